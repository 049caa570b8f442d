"""`edgepipe demo`: generate data, train (or reuse) the small YOLO, export it, and run `detect` on a demo video."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgepipe.postprocess.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="end to end: data -> train the small YOLO -> ONNX -> detect on a demo video",
                       description="Generate the shapes data set, train the small YOLO (about 10 minutes on two "
                       "cores the first time; later runs reuse the checkpoint), export it to ONNX, write a demo "
                       "video with known objects and run `edgepipe detect` on it, then score it against the "
                       "video's ground truth.")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="where the demo's files go (runs/demo)")
    p.add_argument("--checkpoint", type=Path, default=Path("runs/yolo-small/best.pt"),
                   help="reused when it exists, else trained there (runs/yolo-small/best.pt)")
    p.add_argument("--data", type=Path, default=Path("runs/data"), help="where generated data sets live")
    p.add_argument("--epochs", type=int, help="override the recipe's 40 epochs when training")
    p.add_argument("--frames", type=int, default=300, help="frames in the demo video (default 300, 10 s)")
    p.add_argument("--seed", type=int, default=0, help="the demo video's seed")
    p.add_argument("--provider", default="auto", help="auto, cuda or cpu for detection (default auto)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


# The demo video is 640x480 (make_video's default): its objects are counted crossing the vertical middle line.
DEMO_LINE_X = 320
DEMO_LINE = f"middle={DEMO_LINE_X},0,{DEMO_LINE_X},480"


def run(args: argparse.Namespace) -> int:
    from edgepipe.apps.cli import build_parser
    from edgepipe.apps.commands.detect import detect
    from edgepipe.apps.detect.truth import match, read_jsonl, truth_crossings
    from edgepipe.export.data.detection import make_video
    from edgepipe.export.demo import export_if_stale, train_or_reuse

    if args.frames < 1:
        raise UserError(f"--frames must be >= 1, but got {args.frames}")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    ckpt = train_or_reuse(args.checkpoint, args.data, args.epochs)
    model = export_if_stale(ckpt, out / "yolo-small.onnx")
    video = out / "shapes.mp4"
    truth = make_video(video, n_frames=args.frames, seed=args.seed)
    common = ["--model", str(model), "--provider", args.provider, "--no-show"]
    summary = detect(build_parser().parse_args(["detect", *common, "--source", str(video), "--save",
                                                str(out / "annotated.mp4"), "--jsonl", str(out / "detections.jsonl"),
                                                "--line", DEMO_LINE]))
    score = match(read_jsonl(out / "detections.jsonl"), read_jsonl(truth), iou=0.5)
    crossed = summary.crossings["middle"]
    crossed_truth = truth_crossings(read_jsonl(truth), DEMO_LINE_X)
    stills = write_test_images(out / "test-images", args.seed)
    detect(build_parser().parse_args(["detect", *common, "--source", str(stills), "--save",
                                      str(out / "annotated-images")]))
    result = {"model": str(model), "video": str(video), "annotated_video": str(out / "annotated.mp4"),
              "detections": str(out / "detections.jsonl"), "annotated_images": str(out / "annotated-images"),
              "recall": round(score.recall, 4), "precision": round(score.precision, 4), "objects": score.truth,
              "fps": round(summary.fps, 1), "counts": summary.counts,
              "crossings": {d: crossed[d] for d in crossed_truth}, "crossings_truth": crossed_truth}
    if args.json:
        print(json.dumps(result))
        return 0
    print("\n".join(summary.lines()))
    print(f"against the video's ground truth (IoU 0.5): recall {score.recall:.3f}, precision {score.precision:.3f} "
          f"({score.found} of {score.truth} objects found)")
    print("objects crossing the middle line: " + ", ".join(
        f"{crossed[d]} {d.replace('_', ' ')} (truth {n})" for d, n in crossed_truth.items()))
    print(f"annotated test images: {out / 'annotated-images'}")
    print(f"annotated video: {out / 'annotated.mp4'}")
    return 0


def write_test_images(folder: Path, seed: int, n: int = 8) -> Path:
    """n generated 640x480 test scenes (seeds unlike the training set's) as PNG files in folder."""
    import cv2
    import numpy as np

    from edgepipe.export.data.detection import render_scene

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        scene = render_scene(np.random.default_rng([seed, 9000 + i]), (480, 640), min_size=64)
        cv2.imwrite(str(folder / f"scene-{i}.png"), scene.image)
    return folder
