"""`edgepipe demo`: generate data, train (or reuse) the small YOLO, export it, and run `detect` on a demo video."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgepipe.apps.demo import DemoOptions, run_demo


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="end to end: data -> train the small YOLO -> ONNX -> detect on a demo video",
                       description="Generate the shapes data set, train the small YOLO (the first time: it shows "
                       "the time elapsed and left as it goes; later runs reuse the checkpoint, saying which epoch "
                       "and dev mAP, and resume a training stopped with Ctrl-C), export it to ONNX, write a demo "
                       "video with known objects and run `edgepipe detect` on it, then score it against the "
                       "video's ground truth.")
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


def run(args: argparse.Namespace) -> int:
    result = run_demo(DemoOptions(args.out, args.checkpoint, args.data, args.epochs, args.frames, args.seed,
                                  args.provider, args.retrain, args.tiny))
    print(json.dumps(result.as_dict()) if args.json else "\n".join(result.lines()))
    return 0
