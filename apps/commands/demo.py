"""`edgepipe demo [detect]`: the detector end to end on generated shapes; `edgepipe demo kiosk`: the face kiosk."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgepipe.apps.commands.common import add_face_model_args, add_sample_args, face_models, finite
from edgepipe.apps.demo import DemoOptions, run_demo
from edgepipe.apps.face.demo import KioskDemoOptions, run_kiosk_demo

DETECT_TEXT = ("Generate the shapes data set, train the small YOLO (the first time: it shows the time elapsed and "
               "left as it goes; later runs reuse the checkpoint, saying which epoch and dev mAP, and resume a "
               "training stopped with Ctrl-C), export it to ONNX, write a demo video with known objects and run "
               "`edgepipe detect` on it, then score it against the video's ground truth.")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="end to end on generated data: the detector (demo, demo detect) or the face kiosk "
                       "(demo kiosk)", description=DETECT_TEXT + " `edgepipe demo kiosk`: the face-check kiosk.")
    add_detect_args(p)
    demos = p.add_subparsers(dest="demo", metavar="DEMO")
    add_detect_args(demos.add_parser("detect", help="the detector (the default)", description=DETECT_TEXT))
    add_kiosk_args(demos.add_parser(
        "kiosk", help="the face-check kiosk: sample people, a gallery, the kiosk on a clip of visitors, scored",
        description="Write sample people (`edgepipe face samples`), enroll them into an SQLite gallery calibrated on "
        "held-out people, run `edgepipe kiosk` on a clip of enrolled and unknown visitors, and compare its decisions "
        "with the clip's truth: exit code 0 when each enrolled visitor is welcomed once by name and every unknown "
        "one refused, else 1. Uses the face models edgepipe trained (tests/assets); its steps show the time elapsed "
        "and left."))


def add_detect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=DemoOptions.out,
                   help="where the demo's files go (%(default)s)")
    p.add_argument("--checkpoint", type=Path, default=DemoOptions.checkpoint,
                   help="reused when its training finished, resumed when it was interrupted, else trained there "
                   "(%(default)s)")
    p.add_argument("--data", type=Path, default=DemoOptions.data, help="where generated data sets live")
    p.add_argument("--epochs", type=int, help="epochs of a new training (default: the recipe's)")
    p.add_argument("--retrain", action="store_true", help="train anew, even over a finished or interrupted run")
    p.add_argument("--tiny", action="store_true", help="a seconds-long training configuration (smoke test)")
    p.add_argument("--frames", type=int, default=DemoOptions.frames,
                   help="frames in the demo video (default %(default)s)")
    p.add_argument("--seed", type=int, default=DemoOptions.seed, help="the demo video's seed")
    p.add_argument("--provider", default=DemoOptions.provider,
                   help="auto, cuda or cpu for detection (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def add_kiosk_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=KioskDemoOptions.out,
                   help="where the demo's files go (%(default)s); samples made there earlier are reused when complete")
    add_sample_args(p)
    p.add_argument("--far", type=finite, default=KioskDemoOptions.far,
                   help="false-accept rate the threshold is calibrated for (default %(default)s)")
    p.add_argument("--threshold", type=finite, help="accept when distance <= this, instead of the calibrated one")
    p.add_argument("--quiet", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_face_model_args(p, shipped=True)
    p.set_defaults(func=run_kiosk)


def run(args: argparse.Namespace) -> int:
    result = run_demo(DemoOptions(args.out, args.checkpoint, args.data, args.epochs, args.frames, args.seed,
                                  args.provider, args.retrain, args.tiny))
    print(json.dumps(result.as_dict()) if args.json else "\n".join(result.lines()))
    return 0


def run_kiosk(args: argparse.Namespace) -> int:
    result = run_kiosk_demo(KioskDemoOptions(args.out, face_models(args), args.people, args.photos, args.unknown,
                                             args.fps, args.seed, args.far, args.threshold, args.progress))
    print(json.dumps(result.as_dict()) if args.json else "\n".join(result.lines()))
    return 0 if result.matches else 1
