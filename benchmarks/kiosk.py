"""The face kiosk measured: threshold quality on held-out identities, visits on a generated video, latency per frame.

Run from the project root: python -m benchmarks.kiosk [--enrolled 5] [--unknown 5].
Models: the trained test assets (tests/assets/yolo-face.onnx, tests/assets/facenet.onnx), CPU provider.
1. The decision threshold is calibrated at FAR 1e-2 on the dev identities (enrollment-style photos, detected,
   cropped and embedded as the kiosk does); on the held-out test identities it prints TAR and FAR at that
   threshold, and their own EER and TAR at FAR 1e-2.
2. A generated kiosk video of test identities (some enrolled, some not, one far away) runs through
   `edgepipe kiosk`; it prints the visit score and the per-frame latency medians (detect, embed + identify).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from edgepipe.apps.face.truth import score_visits
from edgepipe.export.data.faces import identity_splits
from edgepipe.postprocess.calibration import equal_error_rate, roc_auc, roc_curve, threshold_at_far
from tests.kiosk_scenario import analyzer, calibration_distances, make_scenario, run_kiosk


def held_out(threshold: float) -> None:
    genuine, impostor = calibration_distances(analyzer(), identity_splits()["test"].faces)
    tar, far = float((genuine <= threshold).mean()), float((impostor <= threshold).mean())
    eer = equal_error_rate(genuine, impostor)[0]
    auc = roc_auc(roc_curve(genuine, impostor))
    own = threshold_at_far(genuine, impostor, 1e-2)
    print(f"held-out test identities: {len(genuine)} genuine and {len(impostor)} impostor pairs")
    print(f"  at the dev-calibrated threshold {threshold:.4f}: TAR {tar:.3f}, FAR {far:.4f}")
    print(f"  their own ROC AUC {auc:.4f}, EER {eer:.3f}; TAR at FAR 1e-2 {own.tar:.3f} (threshold "
          f"{own.threshold:.4f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enrolled", type=int, default=5)
    parser.add_argument("--unknown", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--far", type=float, default=1e-2, help="target false-accept rate of the threshold")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scenario = make_scenario(Path(tmp), args.enrolled, args.unknown, seed=args.seed, far=args.far)
        print(f"threshold {scenario.threshold:.4f} calibrated at FAR {args.far:g} on the dev identities (their EER "
              f"{scenario.eer:.3f})")
        held_out(scenario.threshold)
        summary = run_kiosk(scenario)
    for event in summary.events:
        print(f"  frame {event.frame:>5} {event.kind:<8} {event.name:<8} distance {event.distance:.3f}")
    score = score_visits(summary.events, scenario.visits, scenario.names)
    print(f"kiosk video: {summary.frames} frames, {len(scenario.visits)} visits")
    print(f"  enrolled visits welcomed once by the right name: {score.welcomed} of {score.enrolled_visits}; "
          f"wrong welcomes {score.wrong}; repeated {score.repeated}; unknown visits {score.unknown_visits} "
          f"({score.unknown_events} 'unknown person' decisions); decisions during the far-away visit "
          f"{score.far_decisions}")
    print(f"  per frame on CPU (medians): detect {summary.detect_ms:.2f} ms, embed + identify "
          f"{summary.recognize_ms:.2f} ms, whole frame {summary.frame_ms:.2f} ms; "
          f"{summary.frames / summary.seconds:.0f} FPS end to end")


if __name__ == "__main__":
    main()
