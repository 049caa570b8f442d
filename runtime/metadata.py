"""Model metadata: the one schema export writes into ONNX metadata_props and the runtime reads back."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from edgepipe.postprocess.anchors import ANCHOR_UNITS
from edgepipe.postprocess.decoders import HEAD_OPTIONS, HEADS
from edgepipe.postprocess.embeddings import DISTANCES
from edgepipe.postprocess.errors import UserError
from edgepipe.postprocess.nms_output import NMS_HEAD, NMS_KEYS
from edgepipe.runtime.preprocessing import PreprocessSpec

SCHEMA = 2  # 2: nms and evaluation (an older edgepipe says to upgrade instead of calling the file malformed)
METADATA_KEY = "edgepipe"
TASKS = ("classify", "detect", "embed", "verify")
SOURCES = ("edgepipe", "ultralytics", "sidecar", "options")
HOW_TO_DESCRIBE = (
    "add them at export, in a sidecar file MODEL.json next to the model, or with command-line options "
    "(--imgsz, --names, ...)"
)


def project_version() -> str:
    """The installed edgepipe version (written into every exported file's metadata), "unknown" when not installed."""
    try:
        return version("edgepipe")
    except PackageNotFoundError:
        return "unknown"


# Flat, friendly keys of a sidecar file or of command-line overrides.
FLAT_KEYS = (
    "task", "imgsz", "names", "head", "anchors", "anchor_units", "mean", "std", "channel_order", "resize",
    "pad_value", "stride", "auto_pad", "dtype", "embedding_size", "distance", "threshold", "model_name", "nms",
    "window", "window_stride", "encoder_sha256", "kpt_shape", "class_keypoints",
)


@dataclass(frozen=True)
class ModelMeta:
    """What the runtime needs to run a model: its task, its input, and how to read its output.

    task: "classify" | "detect" | "embed" | "verify". preprocess: the model's PreprocessSpec.
    class_names: names by class id. head: the detector's decoder, a key of postprocess.decoders.HEADS.
    anchors: ((w, h), ...) for "yolo-course", in anchor_units ("grid" cells or input "pixels").
    embedding_size, distance ("squared_l2" | "cosine"), threshold: for encoders (threshold 0.0: not calibrated).
    metrics: training numbers (e.g. {"map50": 0.93}), copied from the checkpoint. nms: for head "yolo-nms", the
    conf, iou and max_det the graph's NMS was built with. evaluation: what was measured on this very file when it
    was written (export, quantize): the metric, its value, the data, the reference and the drop against it.
    source: where this description came from.
    window: (height, width) of a sliding window in input pixels and window_stride: the pixels between neighbouring
    windows, for a window classifier and the "windows" head (its convolutional form), else () and 0.
    encoder_sha256: for a verify model taking embeddings (a Siamese head), the sha256 of the encoder file whose
    embeddings it was trained on ("" when unknown). A verify model needs embedding_size; distance only for embed.
    kpt_shape: (K, D) for the pose heads: K landmarks per box with D numbers each (2: x, y; 3: x, y, visibility),
    else (); class_keypoints: how many of the K slots each class uses (the first ones; () when all do).
    """

    task: str
    preprocess: PreprocessSpec
    class_names: tuple[str, ...] = ()
    head: str = ""
    anchors: tuple[tuple[float, float], ...] = ()
    anchor_units: str = "grid"
    embedding_size: int = 0
    distance: str = ""
    threshold: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    nms: dict[str, float] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    model_name: str = ""
    version: str = ""
    exported_at: str = ""
    source: str = "edgepipe"
    window: tuple[int, ...] = ()
    window_stride: int = 0
    encoder_sha256: str = ""
    kpt_shape: tuple[int, ...] = ()
    class_keypoints: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(str(n) for n in self.class_names))
        object.__setattr__(self, "anchors", tuple((float(w), float(h)) for w, h in self.anchors))
        object.__setattr__(self, "window", tuple(int(v) for v in self.window))
        object.__setattr__(self, "kpt_shape", tuple(int(v) for v in self.kpt_shape))
        object.__setattr__(self, "class_keypoints", tuple(int(v) for v in self.class_keypoints))
        _one_of("task", self.task, TASKS)
        _one_of("head", self.head, ("", *HEADS))
        _one_of("anchor_units", self.anchor_units, ANCHOR_UNITS)
        _one_of("distance", self.distance, ("", *DISTANCES))
        _one_of("source", self.source, SOURCES)
        missing = []
        if self.task == "detect":
            if not self.head:
                missing.append(f"head (one of {tuple(HEADS)})")
            if not self.class_names:
                missing.append("names (the class names)")
            if self.head in ("yolo-course", "yolo-course-pose") and not self.anchors:
                missing.append(f"anchors (the {self.head} head needs them)")
            if self.head == NMS_HEAD and not all(k in self.nms for k in NMS_KEYS):
                missing.append(f"nms {NMS_KEYS} (the {NMS_HEAD} head's thresholds)")
            if self.head in ("yolo-course-pose", "yolov8-pose") and not _kpt_shape_ok(self.kpt_shape):
                missing.append(f"kpt_shape ([K >= 1, 2 or 3]: the {self.head} head needs it)")
            if self.class_keypoints and (len(self.class_keypoints) != len(self.class_names) or not all(
                    0 <= n <= (self.kpt_shape or (0,))[0] for n in self.class_keypoints)):
                missing.append("class_keypoints (one count in [0, K] per class)")
            if self.head == "windows" and (len(self.window) != 2 or min(self.window) < 1 or self.window_stride < 1):
                missing.append("window ([height, width] >= 1) and window_stride (>= 1) (the windows head needs them)")
        if self.task in ("embed", "verify") and self.embedding_size <= 0:
            missing.append("embedding_size (> 0)")
        if self.task == "embed" and not self.distance:
            missing.append(f"distance (one of {DISTANCES})")
        if self.task == "classify" and not self.class_names:
            missing.append("names (the class names)")
        if missing:
            what = ", ".join(missing)
            raise UserError(f"model metadata for task {self.task!r} is missing {what}: {HOW_TO_DESCRIBE}")


    def decode_options(self) -> dict[str, Any]:
        """The keyword arguments postprocess.decode takes for this model's head, beyond the thresholds and names:
        anchors and anchor_units, and the head's own (HEAD_OPTIONS: window, window_stride for "windows")."""
        own = {name: getattr(self, name) for name in HEAD_OPTIONS.get(self.head, ())}
        return {"anchors": self.anchors, "anchor_units": self.anchor_units, **own}


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    """Raise a UserError naming the metadata key unless value is one of allowed."""
    if value not in allowed:
        raise UserError(f"metadata key {name!r} must be one of {allowed}, but got {value!r}")


def to_metadata_props(meta: ModelMeta) -> dict[str, str]:
    """The ONNX metadata_props that describe a model: one key, "edgepipe", holding versioned JSON."""
    data = asdict(meta)
    data["schema"] = SCHEMA
    return {METADATA_KEY: json.dumps(data, sort_keys=True)}


def from_metadata_props(props: dict[str, str]) -> ModelMeta:
    """Read the "edgepipe" key written by to_metadata_props."""
    try:
        data = json.loads(props[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise UserError(f"metadata key {METADATA_KEY!r} is not valid JSON ({exc}): re-export the model") from None
    if not isinstance(data, dict):
        raise UserError(f"metadata key {METADATA_KEY!r} must hold a JSON object, but got {type(data).__name__}")
    schema = data.pop("schema", None)
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
        raise UserError(f"metadata key {METADATA_KEY!r} needs a schema >= 1, but got {schema!r}: re-export the model")
    if schema > SCHEMA:
        raise UserError(
            f"model metadata has schema {schema!r}, this edgepipe reads schema <= {SCHEMA}: "
            "the model was made by a newer edgepipe; upgrade edgepipe"
        )
    try:
        spec = PreprocessSpec(**data.pop("preprocess"))
        return ModelMeta(preprocess=spec, **data)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"metadata key {METADATA_KEY!r} is malformed ({exc}): re-export the model") from None


def _ultralytics(props: dict[str, str]) -> dict[str, Any]:
    """Flat keys from an Ultralytics export (YOLOv8 / YOLO11 detect or pose): names as a Python dict literal, imgsz,
    stride, and a pose model's kpt_shape."""
    if props.get("task") not in (None, "detect", "pose"):
        raise UserError(f"Ultralytics task {props['task']!r} is not supported: only 'detect' and 'pose' models run "
                         "here")
    pose = props.get("task") == "pose"
    flat: dict[str, Any] = {"task": "detect", "head": "yolov8-pose" if pose else "yolov8", "resize": "letterbox",
                            "pad_value": 114, "channel_order": "RGB"}
    if pose and "kpt_shape" in props:
        flat["kpt_shape"] = props["kpt_shape"]
    for key in ("names", "imgsz", "stride"):
        if key in props:
            try:
                flat[key] = ast.literal_eval(props[key])
            except (ValueError, SyntaxError):
                raise UserError(f"Ultralytics metadata key {key!r} is malformed: {props[key][:80]!r}") from None
    if "description" in props:
        flat["model_name"] = props["description"]
    return flat


def sidecars(model_path: str | Path) -> list[Path]:
    """The sidecar files next to a model that exist: MODEL.json, MODEL.yaml, MODEL.yml, in the order read."""
    path = Path(model_path)
    return [side for side in (path.with_suffix(s) for s in (".json", ".yaml", ".yml")) if side.is_file()]


def read_sidecar(model_path: str | Path) -> dict[str, Any]:
    """Flat keys from MODEL.json (or MODEL.yaml / MODEL.yml) next to the model, or {} when there is none."""
    for side in sidecars(model_path):
        suffix = side.suffix
        text = side.read_text()
        if suffix == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise UserError(f"sidecar {side} is not valid JSON: {exc}") from None
        else:
            try:
                import yaml
            except ImportError:
                raise UserError(f"sidecar {side} needs PyYAML to read (pip install pyyaml), or use JSON") from None
            data = yaml.safe_load(text)
        if not isinstance(data, dict):
            raise UserError(f"sidecar {side} must hold a mapping of keys, but got {type(data).__name__}")
        unknown = sorted(set(data) - set(FLAT_KEYS))
        if unknown:
            raise UserError(f"sidecar {side} has unknown keys {unknown}; known keys: {list(FLAT_KEYS)}")
        return data
    return {}


def from_flat(flat: dict[str, Any], source: str) -> ModelMeta:
    """Build a ModelMeta from flat keys (sidecar, Ultralytics, command line). Errors name the key and its value."""
    missing = [k for k in ("task", "imgsz") if k not in flat]
    if missing:
        raise UserError(f"model cannot be described: missing {missing}: {HOW_TO_DESCRIBE}")
    spec = PreprocessSpec(
        input_size=_parse(flat, "imgsz", None, _imgsz, "an int or [height, width] of ints >= 1"),
        resize=flat.get("resize", "letterbox" if flat["task"] == "detect" else "resize"),
        pad_value=_parse(flat, "pad_value", 114, _int, "an int in [0, 255]"),
        stride=_parse(flat, "stride", 0, _int, "an int >= 0"),
        auto_pad=_parse(flat, "auto_pad", False, _bool, "true or false"),
        channel_order=flat.get("channel_order", "RGB"),
        mean=_parse(flat, "mean", (0.0,), _floats, "a number or a list of numbers"),
        std=_parse(flat, "std", (1.0,), _floats, "a number or a list of numbers"),
        dtype=flat.get("dtype", "float32"),
    )
    return ModelMeta(
        task=flat["task"],
        preprocess=spec,
        class_names=_parse(flat, "names", (), _names, "a list of names, or {id: name} with ids 0..N-1"),
        head=flat.get("head", ""),
        anchors=_parse(flat, "anchors", (), _anchors, "a list of [w, h] pairs of numbers > 0"),
        anchor_units=flat.get("anchor_units", "grid"),
        embedding_size=_parse(flat, "embedding_size", 0, _int, "an int > 0"),
        distance=flat.get("distance", ""),
        threshold=_parse(flat, "threshold", 0.0, _number, "a number"),
        nms=_parse(flat, "nms", {}, _nms, f"a mapping of {NMS_KEYS} to numbers"),
        model_name=str(flat.get("model_name", "")),
        source=source,
        window=_parse(flat, "window", (), _window, "an int or [height, width] of ints >= 1"),
        window_stride=_parse(flat, "window_stride", 0, _int, "an int >= 1"),
        encoder_sha256=str(flat.get("encoder_sha256", "")),
        kpt_shape=_parse(flat, "kpt_shape", (), _ints, "[K, D] (landmarks per box, numbers per landmark)"),
        class_keypoints=_parse(flat, "class_keypoints", (), _ints, "a list of ints, one per class"),
    )


def _parse(flat: dict[str, Any], key: str, default: Any, convert: Callable[[Any], Any], expected: str) -> Any:
    """convert(flat[key]), or default when the key is absent; a UserError names the key and the bad value."""
    if key not in flat:
        return default
    try:
        return convert(flat[key])
    except (TypeError, ValueError):
        raise UserError(f"metadata key {key!r} must be {expected}, but got {flat[key]!r}") from None


def _int(value: Any) -> int:
    """An integral number as int: 3 or 3.0; not 3.5, "3" or True."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise UserError(value)
    return int(value)


def _bool(value: Any) -> bool:
    """A JSON true/false; not "true" or 1."""
    if not isinstance(value, bool):
        raise UserError(value)
    return value


def _imgsz(value: Any) -> tuple[int, int]:
    """640 -> (640, 640); [480, 640] -> (480, 640): (height, width), both >= 1."""
    size = [value, value] if isinstance(value, (int, float)) else list(value)
    if len(size) != 2:
        raise UserError(value)
    h, w = _int(size[0]), _int(size[1])
    if min(h, w) < 1:
        raise UserError(value)
    return h, w


def _kpt_shape_ok(shape: tuple[int, ...]) -> bool:
    """(K, D) with K >= 1 landmarks and D 2 (x, y) or 3 (x, y, visibility) numbers each."""
    return len(shape) == 2 and shape[0] >= 1 and shape[1] in (2, 3)


def _ints(value: Any) -> tuple[int, ...]:
    """[17, 3] or "[17, 3]" (Ultralytics writes Python literals) -> (17, 3); every item an int."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except SyntaxError:
            raise UserError(value) from None
    if isinstance(value, (int, float)):
        raise UserError(value)
    return tuple(_int(v) for v in value)


def _window(value: Any) -> tuple[int, ...]:
    """[] -> () (no window); otherwise as _imgsz: 14 -> (14, 14), [14, 14] -> (14, 14)."""
    return () if isinstance(value, (list, tuple)) and not value else _imgsz(value)


def _floats(value: Any) -> tuple[float, ...]:
    """0.5 -> (0.5,); [0.485, 0.456, 0.406] -> the same as a tuple. PreprocessSpec checks the count."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (float(value),)
    if isinstance(value, str):
        raise UserError(value)
    return tuple(float(_number(v)) for v in value)


def _number(value: Any) -> float:
    """A JSON number; not a string or a bool."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(value)
    return float(value)


def _names(value: Any) -> tuple[str, ...]:
    """["a", "b"] or {0: "a", 1: "b"} (Ultralytics; in JSON the ids are strings "0", "1") -> ("a", "b")."""
    if isinstance(value, str):
        raise UserError(value)
    if isinstance(value, dict):
        by_id = {int(k): str(v) for k, v in value.items()}
        if sorted(by_id) != list(range(len(by_id))):
            raise UserError(value)
        return tuple(by_id[i] for i in range(len(by_id)))
    return tuple(str(v) for v in value)


def _nms(value: Any) -> dict[str, float]:
    """{"conf": 0.25, "iou": 0.45, "max_det": 100} -> the same with float values; only NMS_KEYS."""
    if not isinstance(value, dict) or set(value) - set(NMS_KEYS):
        raise UserError(value)
    return {k: _number(v) for k, v in value.items()}


def _anchors(value: Any) -> tuple[tuple[float, float], ...]:
    """[[w, h], ...] -> ((w, h), ...), every size > 0."""
    pairs = tuple((_number(w), _number(h)) for w, h in value)
    if any(min(pair) <= 0 for pair in pairs):
        raise UserError(value)
    return pairs


def read_metadata(
    props: dict[str, str], model_path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> ModelMeta:
    """Describe a model. Precedence: overrides > sidecar file > edgepipe metadata > Ultralytics metadata.

    props: the ONNX file's metadata_props. model_path: where to look for MODEL.json. overrides: flat keys from
    the command line (None values ignored). The result's source names the highest layer that contributed.
    Raises UserError naming the missing keys when nothing describes the model.
    """
    extra = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(extra) - set(FLAT_KEYS))
    if unknown:
        raise UserError(f"unknown metadata overrides {unknown}; known keys: {list(FLAT_KEYS)}")
    sidecar = read_sidecar(model_path) if model_path is not None else {}
    layered = {**sidecar, **extra}
    source = "options" if extra else "sidecar"
    if METADATA_KEY in props:
        base = from_metadata_props(props)
        return _apply(base, layered, source) if layered else base
    if "names" in props or props.get("author", "").startswith("Ultralytics"):
        return from_flat({**_ultralytics(props), **layered}, source if layered else "ultralytics")
    return from_flat(layered, source)


def _apply(meta: ModelMeta, flat: dict[str, Any], source: str) -> ModelMeta:
    """meta with flat keys laid over it (sidecar or command line over the file's own metadata)."""
    merged = {
        "task": meta.task, "imgsz": list(meta.preprocess.input_size), "names": list(meta.class_names),
        "head": meta.head, "anchors": [list(a) for a in meta.anchors], "anchor_units": meta.anchor_units,
        "mean": list(meta.preprocess.mean), "std": list(meta.preprocess.std),
        "channel_order": meta.preprocess.channel_order, "resize": meta.preprocess.resize,
        "pad_value": meta.preprocess.pad_value, "stride": meta.preprocess.stride,
        "auto_pad": meta.preprocess.auto_pad, "dtype": meta.preprocess.dtype,
        "embedding_size": meta.embedding_size, "distance": meta.distance, "threshold": meta.threshold,
        "model_name": meta.model_name, "nms": meta.nms, "window": list(meta.window),
        "window_stride": meta.window_stride, "encoder_sha256": meta.encoder_sha256, "kpt_shape": list(meta.kpt_shape),
        "class_keypoints": list(meta.class_keypoints),
    }
    merged.update(flat)
    new = from_flat(merged, source)
    return replace(new, metrics=meta.metrics, evaluation=meta.evaluation, version=meta.version,
                   exported_at=meta.exported_at)
