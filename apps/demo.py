"""run_demo(DemoOptions): data -> train (or reuse) the small YOLO -> ONNX -> detect on a demo video, scored."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepipe.apps.detect.app import Summary
from edgepipe.apps.detect.lines import Line
from edgepipe.apps.detect.service import DetectOptions, detect
from edgepipe.apps.detect.truth import match, read_jsonl, truth_crossings
from edgepipe.apps.options import ModelOptions
from edgepipe.apps.stream.loop import StreamOptions
from edgepipe.postprocess.errors import UserError

# The demo video is 640x480 (make_video's default): its objects are counted crossing the vertical middle line.
LINE_X = 320.0
LINE = Line("middle", (LINE_X, 0.0, LINE_X, 480.0))
OBJECTS = 12  # in the demo video, each crossing the whole frame: every class several times each way


@dataclass(frozen=True)
class DemoOptions:
    """out: where the demo's files go. checkpoint: reused when its run finished, resumed when it was interrupted, else
    trained there. data: where the generated data sets live. epochs: of a new training (None: the recipe's).
    frames: frames in the demo video. seed: the demo video's seed. provider: auto, cuda or cpu for detection.
    retrain: train anew even when a checkpoint is there. tiny: the seconds-long training configuration (smoke runs,
    tests)."""

    out: Path = Path("runs/demo")
    checkpoint: Path = Path("runs/yolo-small/best.pt")
    data: Path = Path("runs/data")
    epochs: int | None = None
    frames: int = 600
    seed: int = 0
    provider: str = "auto"
    retrain: bool = False
    tiny: bool = False

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise UserError(f"--frames must be >= 1, but got {self.frames}")


@dataclass(frozen=True)
class DemoResult:
    """What the demo wrote and how it scored against the video's ground truth (IoU 0.5): recall, precision, the
    objects in the truth, and the middle line's crossings per direction beside the truth's."""

    model: str
    video: str
    annotated_video: str
    detections: str
    annotated_images: str
    recall: float
    precision: float
    objects: int
    found: int
    fps: float
    counts: dict[str, int]
    crossings: dict[str, int]
    crossings_truth: dict[str, int]
    summary: Summary

    def as_dict(self) -> dict[str, Any]:
        """The result as the demo's --json prints it."""
        return {"model": self.model, "video": self.video, "annotated_video": self.annotated_video,
                "detections": self.detections, "annotated_images": self.annotated_images,
                "recall": round(self.recall, 4), "precision": round(self.precision, 4), "objects": self.objects,
                "fps": round(self.fps, 1), "counts": self.counts, "crossings": self.crossings,
                "crossings_truth": self.crossings_truth}

    def lines(self) -> list[str]:
        return [*self.summary.lines(),
                f"against the video's ground truth (IoU 0.5): recall {self.recall:.3f}, precision "
                f"{self.precision:.3f} ({self.found} of {self.objects} objects found)",
                "objects crossing the middle line: " + ", ".join(
                    f"{self.crossings[d]} {d.replace('_', ' ')} (truth {n})" for d, n in self.crossings_truth.items()),
                f"annotated test images: {self.annotated_images}",
                f"annotated video: {self.annotated_video}"]


def run_demo(options: DemoOptions) -> DemoResult:
    """Train, resume or reuse the checkpoint, export it, write the demo video and test images, detect in both, score."""
    from edgepipe.export.data.detection import make_video
    from edgepipe.export.demo import export_if_stale, train_or_reuse

    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    ckpt = train_or_reuse(options.checkpoint, options.data, options.epochs, options.retrain, options.tiny)
    model = ModelOptions(export_if_stale(ckpt, out / "yolo-small.onnx"), options.provider)
    video = out / "shapes.mp4"
    truth = make_video(video, n_frames=options.frames, seed=options.seed, n_objects=OBJECTS, crossing=True)
    summary = detect(DetectOptions(model, StreamOptions(str(video), show=False), save=out / "annotated.mp4",
                                   jsonl=out / "detections.jsonl", lines=(LINE,))).one()
    score = match(read_jsonl(out / "detections.jsonl"), read_jsonl(truth), iou=0.5)
    crossed = summary.crossings[LINE.name]
    crossed_truth = truth_crossings(read_jsonl(truth), LINE_X)
    stills = write_test_images(out / "test-images", options.seed)
    detect(DetectOptions(model, StreamOptions(str(stills), show=False), save=out / "annotated-images"))
    return DemoResult(str(model.path), str(video), str(out / "annotated.mp4"), str(out / "detections.jsonl"),
                      str(out / "annotated-images"), score.recall, score.precision, score.truth, score.found,
                      summary.fps, summary.counts, {d: crossed[d] for d in crossed_truth}, crossed_truth, summary)


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
