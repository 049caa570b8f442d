"""Verification by the Siamese head's probability against the distance threshold, on the same held-out pairs.

Run from the project root: python -m benchmarks.siamese [--head tests/assets/siamese-head.onnx]. Models: the face
encoder tests/assets/facenet.onnx through the kiosk's own Encoder (mirror test-time augmentation) and the head,
both on onnxruntime's CPU provider, as `edgepipe face verify` runs them. For the 20 test identities (never seen in
training), 10 views each, plain (as `edgepipe eval` makes them) and as the kiosk crops faces: every pair's squared
distance and the head's probability -> ROC AUC and TAR at FAR 1e-2 of each; then the decision rules as deployed:
the distance threshold calibrated at FAR 1e-2 on the dev identities, the head's probability >= 0.5 (its default),
and the head's probability at least the --min-probability calibrated at FAR 1e-2 on the same dev pairs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edgepipe.apps.face.pipeline import Encoder
from edgepipe.apps.face.siamese import MIN_PROBABILITY, PairHead
from edgepipe.export.data.faces import face_views, identity_splits, kiosk_face_views
from edgepipe.postprocess.calibration import roc_auc, roc_curve, threshold_at_far
from edgepipe.runtime import load

ASSETS = Path(__file__).resolve().parents[1] / "tests" / "assets"
VIEWS = 10


def pair_scores(encoder: Encoder, head: PairHead, split: str, kiosk: bool) -> dict[str, np.ndarray]:
    """Every pair of VIEWS views of each identity of split: "same" (P,) bool, "distance" (P,) squared L2 of the
    kiosk's embeddings, "p" (P,) the head's probability."""
    rng = np.random.default_rng(3 if kiosk else 2)
    size = encoder.size[0]
    faces = identity_splits()[split].faces
    views = [v for f in faces for v in (kiosk_face_views(f, VIEWS, rng, size, 1.0) if kiosk
                                          else face_views(f, VIEWS, rng, size))]
    e = encoder(list(views))
    labels = np.repeat(np.arange(len(faces)), VIEWS)
    i, j = np.triu_indices(len(labels), k=1)
    p = np.concatenate([head(e[a], e[j[i == a]]) for a in range(len(labels) - 1)])  # probe a against the rest
    return {"same": labels[i] == labels[j], "distance": ((e[i] - e[j]) ** 2).sum(axis=1), "p": p}


def rates(accept: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(TAR, FAR) of accept (P,) bool on pairs labeled same (P,) bool."""
    return float(accept[same].mean()), float(accept[~same].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", type=Path, default=ASSETS / "siamese-head.onnx")
    parser.add_argument("--encoder", type=Path, default=ASSETS / "facenet.onnx")
    args = parser.parse_args()
    encoder = Encoder(load(args.encoder, providers="cpu"))
    head = PairHead(load(args.head, providers="cpu"), encoder.embedding_size)
    dev = pair_scores(encoder, head, "dev", kiosk=True)
    same = dev["same"]
    threshold = threshold_at_far(dev["distance"][same], dev["distance"][~same], 1e-2).threshold
    min_p = 1 - threshold_at_far(1 - dev["p"][same], 1 - dev["p"][~same], 1e-2).threshold
    print(f"calibrated at FAR 1e-2 on the dev identities' kiosk crops: distance threshold {threshold:.4f}, "
          f"--min-probability {min_p:.4f}")
    print(f"{'test views':<12}{'pairs':>8}{'AUC dist':>10}{'AUC head':>10}{'TAR@1e-2 dist':>15}{'TAR@1e-2 head':>15}"
          f"{'dist rule TAR/FAR':>20}{'head p>=0.5 TAR/FAR':>22}{'head calibrated TAR/FAR':>26}")
    for name, kiosk in (("plain", False), ("kiosk", True)):
        s = pair_scores(encoder, head, "test", kiosk)
        same = s["same"]
        by = {"dist": s["distance"], "head": 1 - s["p"]}  # smaller means the same person, for both
        auc = {k: roc_auc(roc_curve(v[same], v[~same])) for k, v in by.items()}
        tar = {k: threshold_at_far(v[same], v[~same], 1e-2).tar for k, v in by.items()}
        dist_rule = rates(s["distance"] <= threshold, same)
        head_rule, calibrated = rates(s["p"] >= MIN_PROBABILITY, same), rates(s["p"] >= min_p, same)
        print(f"{name:<12}{len(same):>8}{auc['dist']:>10.4f}{auc['head']:>10.4f}{tar['dist']:>15.3f}"
              f"{tar['head']:>15.3f}{dist_rule[0]:>12.3f}/{dist_rule[1]:.4f}{head_rule[0]:>14.3f}/{head_rule[1]:.4f}"
              f"{calibrated[0]:>18.3f}/{calibrated[1]:.4f}")


if __name__ == "__main__":
    main()
