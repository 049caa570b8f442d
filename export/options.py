"""Typed options of the export floor's services, with their defaults and the names they accept (no torch: the
command line reads these defaults to build its parsers, on edge installs too)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgepipe.postprocess.errors import UserError

DATA_DIR = Path("runs/data")  # where generated data sets live
RUNS_DIR = Path("runs")  # a training run writes RUNS_DIR / RECIPE unless told otherwise
# Each recipe's epochs (--tiny: 1), here so that the parsers and the docs' test read them without torch.
RECIPE_EPOCHS = {"lenet5": 40, "softmax": 60, "shallow": 60, "deep": 60, "logistic": 60, "window": 20,
                 "yolo-small": 40, "yolo-pose": 40, "yolo-face": 40, "facenet": 15, "siamese": 20}
RECIPES = tuple(RECIPE_EPOCHS)
OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
DECAYS = ("none", "inverse_time", "exponential", "cosine")
SPLITS = ("train", "dev", "test")  # of every data set, in this order
# Detectors are evaluated with these unless told otherwise (a model with NMS in its graph: at the graph's own).
EVAL_CONF, EVAL_IOU, EVAL_MAX_DET = 0.001, 0.5, 100


@dataclass(frozen=True)
class ExportOptions:
    """What export_model writes: source (runs/NAME/best.pt or a zoo model name) as ONNX at out (.onnx), and beside
    it, when asked: OUT.fp16.onnx, OUT.int8.onnx (static QDQ, calibrated on `calib` images of the model's data,
    head kept fp32), OUT.nms.onnx (decode + NMS inside the graph, course YOLO detectors only, thresholds conf
    and iou), OUT.uint8.onnx (uint8_input: takes the resized uint8 BGR frames and normalizes them itself) and
    OUT.conv.onnx (conv: a window classifier's convolutional form, any input size).

    imgsz: (height, width) input of a zoo detector, or of the convolutional form's metadata. simplify: run onnxslim
    on the graph. tolerance: the largest max |onnxruntime - PyTorch| allowed on real samples, for outputs up to 1
    (it scales with larger ones); fp16_tolerance: the largest max |fp16 - fp32| / max |fp32|; uint8_tolerance: the
    largest max |uint8 - fp32|. Every file is evaluated on the `split` of its data (under data) as `edgepipe eval`
    does; a variant whose metric drops more than max_drop below the fp32 file's (or that fails its parity) is not
    written, unless keep_failed. bench_runs: interleaved timed runs per file for the report's p50 latency.
    progress: bars on stderr.
    """

    source: str | Path
    out: Path
    opset: int = 17  # runs on onnxruntime >= 1.14 and every current edge runtime
    imgsz: tuple[int, int] | None = None
    simplify: bool = False
    fp16: bool = False
    int8: bool = False
    calib: int = 64
    nms: bool = False
    conf: float = 0.25
    iou: float = 0.45
    tolerance: float = 1e-4
    uint8_input: bool = False
    fp16_tolerance: float = 1e-2
    uint8_tolerance: float = 1e-5
    max_drop: float = 0.01
    keep_failed: bool = False
    split: str = "test"
    data: Path = DATA_DIR
    bench_runs: int = 100
    progress: bool = True
    conv: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        if self.split not in SPLITS:
            raise UserError(f"split must be one of {SPLITS}, but got {self.split!r}")
        if self.max_drop < 0 or self.bench_runs < 1:
            raise UserError(f"max_drop must be >= 0 and bench_runs >= 1, but got {self.max_drop} and "
                             f"{self.bench_runs}")
        if self.imgsz is not None:
            if len(self.imgsz) != 2 or any(int(v) != v or v < 1 for v in self.imgsz):
                raise UserError(f"imgsz must be (height, width) in whole pixels >= 1, but got {self.imgsz!r}")
            object.__setattr__(self, "imgsz", (int(self.imgsz[0]), int(self.imgsz[1])))
        if self.calib < 1:
            raise UserError(f"calib must be >= 1 (calibration images for int8), but got {self.calib}")


@dataclass(frozen=True)
class TrainOptions:
    """One training run: recipe (one of RECIPES) trained into out_dir.

    out: the run's folder (None: RUNS_DIR / recipe). data: where generated data sets live. epochs, optimizer (one
    of OPTIMIZERS), learning_rate, decay (one of DECAYS), decay_rate, weight_decay: replace the recipe's own when
    not None. seed: of weights and batches. workers: DataLoader workers for the detectors' augmentation (0 when
    tiny). threads: torch CPU threads (0: torch's default). resume: start from this checkpoint's weights;
    finetune: from its backbone with a fresh head, frozen when freeze_backbone (its batch norm layers keep their
    running statistics). tiny: a seconds-long configuration (smoke tests). progress: a progress bar per epoch on
    stderr (plain lines when it is not a terminal). keep_prob: inverted dropout on the hidden layers, each unit kept
    with this probability (None: the recipe's own, no dropout; models with hidden layers only). encoder: the face
    encoder (.onnx, or a facenet checkpoint) whose embeddings the siamese recipe's head learns to compare.
    """

    recipe: str
    out: Path | None = None
    data: Path = DATA_DIR
    epochs: int | None = None
    optimizer: str | None = None
    learning_rate: float | None = None
    decay: str | None = None
    decay_rate: float | None = None
    weight_decay: float | None = None
    seed: int = 0
    workers: int = 1
    threads: int = 0
    resume: Path | None = None
    finetune: Path | None = None
    freeze_backbone: bool = False
    tiny: bool = False
    progress: bool = True
    keep_prob: float | None = None
    encoder: Path | None = None

    def __post_init__(self) -> None:
        if self.keep_prob is not None and not 0 < self.keep_prob <= 1:
            raise UserError(f"keep_prob (--dropout) must be in (0, 1], the probability of keeping a unit, but got "
                             f"{self.keep_prob}")
        if self.epochs is not None and self.epochs < 1:
            raise UserError(f"epochs must be >= 1, but got {self.epochs}")
        if self.optimizer is not None and self.optimizer not in OPTIMIZERS:
            raise UserError(f"optimizer must be one of {OPTIMIZERS}, but got {self.optimizer!r}")
        if self.decay is not None and self.decay not in DECAYS:
            raise UserError(f"decay must be one of {DECAYS}, but got {self.decay!r}")
        if self.workers < 0 or self.threads < 0:
            raise UserError(f"workers and threads must be >= 0, but got {self.workers} and {self.threads}")

    @property
    def out_dir(self) -> Path:
        """Where the run writes: out, or RUNS_DIR / recipe."""
        return Path(self.out) if self.out is not None else RUNS_DIR / self.recipe


@dataclass(frozen=True)
class EvalOptions:
    """What evaluate measures: model (a checkpoint .pt or an .onnx file) on one of SPLITS of its data.

    data: where generated data sets live. conf, iou: the detectors' score threshold and NMS IoU for mAP (None:
    EVAL_CONF and EVAL_IOU; for a file with NMS in its graph, the graph's). provider: auto, cuda or cpu (ONNX
    files). out: a folder for metrics.json and the PR or ROC curve PNG (None: nothing written). progress: a bar on
    stderr. encoder: the face encoder a Siamese head compares the embeddings of (None: the one its checkpoint was
    trained with).
    """

    model: Path
    split: str = "test"
    data: Path = DATA_DIR
    conf: float | None = None
    provider: str = "cpu"
    out: Path | None = None
    encoder: Path | None = None
    iou: float | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", Path(self.model))
        if self.split not in SPLITS:
            raise UserError(f"split must be one of {SPLITS}, but got {self.split!r}")


@dataclass(frozen=True)
class GradcheckOptions:
    """The course's gradient check of model: a recipe name (its model, fresh weights, its loss and data), a checkpoint
    (its weights, its recipe's loss and data) or a zoo classifier without a recipe (cross-entropy on random images).

    batch: examples in the small batch. epsilon: the two-sided difference's step. params: how many parameters to
    check (0: every one; else a uniform sample of this many, drawn with seed). data: where generated data sets live.
    """

    model: str | Path
    batch: int = 4
    epsilon: float = 1e-7
    params: int = 2000
    seed: int = 0
    data: Path = DATA_DIR

    def __post_init__(self) -> None:
        if self.batch < 1 or self.params < 0 or not self.epsilon > 0:
            raise UserError(f"batch must be >= 1, params >= 0 (0: all) and epsilon > 0, but got batch {self.batch}, "
                             f"params {self.params}, epsilon {self.epsilon}")
