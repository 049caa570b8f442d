"""Model metadata: the one schema export writes into ONNX metadata_props and the runtime reads back."""

from __future__ import annotations

import ast
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from runtime.preprocess import PreprocessSpec

SCHEMA = 1
METADATA_KEY = "edgepipe"
TASKS = ("classify", "detect", "embed", "verify")
HEADS = ("yolo-course", "yolov5", "yolov8")
DISTANCES = ("squared_l2", "cosine")
SOURCES = ("edgepipe", "ultralytics", "sidecar", "options")
HOW_TO_DESCRIBE = "add it at export, in a sidecar file MODEL.json next to the model, or with command-line options"
# Flat, friendly keys of a sidecar file or of command-line overrides.
FLAT_KEYS = (
    "task", "imgsz", "names", "head", "anchors", "anchor_units", "mean", "std", "channel_order", "resize",
    "pad_value", "stride", "embedding_size", "distance", "threshold", "model_name",
)


@dataclass(frozen=True)
class ModelMeta:
    """What the runtime needs to run a model: its task, its input, and how to read its output.

    task: "classify" | "detect" | "embed" | "verify". preprocess: the model's PreprocessSpec.
    class_names: names by class id. head: the detector's decoder ("yolo-course" | "yolov5" | "yolov8").
    anchors: ((w, h), ...) for "yolo-course", in anchor_units ("grid" cells or input "pixels").
    embedding_size, distance ("squared_l2" | "cosine"), threshold: for encoders (threshold 0.0: not calibrated).
    metrics: training/evaluation numbers (e.g. {"map50": 0.93}). source: where this description came from.
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
    model_name: str = ""
    version: str = ""
    exported_at: str = ""
    source: str = "edgepipe"

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(str(n) for n in self.class_names))
        object.__setattr__(self, "anchors", tuple((float(w), float(h)) for w, h in self.anchors))
        _one_of("task", self.task, TASKS)
        _one_of("source", self.source, SOURCES)
        missing = []
        if self.task == "detect":
            if self.head not in HEADS:
                missing.append(f"head (one of {HEADS}, got {self.head!r})")
            if not self.class_names:
                missing.append("names (the class names)")
            if self.head == "yolo-course" and not self.anchors:
                missing.append("anchors (the yolo-course head needs them)")
        if self.task in ("embed", "verify"):
            if self.embedding_size <= 0:
                missing.append("embedding_size (> 0)")
            if self.distance not in DISTANCES:
                missing.append(f"distance (one of {DISTANCES}, got {self.distance!r})")
        if self.task == "classify" and not self.class_names:
            missing.append("names (the class names)")
        if missing:
            what = ", ".join(missing)
            raise ValueError(f"model metadata for task {self.task!r} is missing {what}: {HOW_TO_DESCRIBE}")


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"metadata key {name!r} must be one of {allowed}, but got {value!r}")


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
        raise ValueError(f"metadata key {METADATA_KEY!r} is not valid JSON ({exc}): re-export the model") from None
    if not isinstance(data, dict):
        raise ValueError(f"metadata key {METADATA_KEY!r} must hold a JSON object, but got {type(data).__name__}")
    schema = data.pop("schema", None)
    if not isinstance(schema, int) or schema > SCHEMA:
        raise ValueError(
            f"model metadata has schema {schema!r}, this edgepipe reads schema <= {SCHEMA}: "
            "the model was made by a newer edgepipe; upgrade edgepipe"
        )
    try:
        spec = PreprocessSpec(**data.pop("preprocess"))
        return ModelMeta(preprocess=spec, **data)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"metadata key {METADATA_KEY!r} is malformed ({exc}): re-export the model") from None


def _ultralytics(props: dict[str, str]) -> dict[str, Any]:
    """Flat keys from an Ultralytics export (YOLOv8 / YOLO11 detect): names as a Python dict literal, imgsz, stride."""
    if props.get("task") not in (None, "detect"):
        raise ValueError(f"Ultralytics task {props['task']!r} is not supported: only 'detect' models run here")
    flat: dict[str, Any] = {"task": "detect", "head": "yolov8", "resize": "letterbox", "pad_value": 114,
                            "channel_order": "RGB", "mean": [0.0], "std": [1.0]}
    for key in ("names", "imgsz", "stride"):
        if key in props:
            try:
                flat[key] = ast.literal_eval(props[key])
            except (ValueError, SyntaxError):
                raise ValueError(f"Ultralytics metadata key {key!r} is malformed: {props[key][:80]!r}") from None
    if isinstance(flat.get("names"), dict):
        names = flat["names"]
        flat["names"] = [names[i] for i in sorted(names)]
    if "description" in props:
        flat["model_name"] = props["description"]
    return flat


def read_sidecar(model_path: str | Path) -> dict[str, Any]:
    """Flat keys from MODEL.json (or MODEL.yaml / MODEL.yml) next to the model, or {} when there is none."""
    path = Path(model_path)
    for suffix in (".json", ".yaml", ".yml"):
        side = path.with_suffix(suffix)
        if not side.is_file():
            continue
        text = side.read_text()
        if suffix == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"sidecar {side} is not valid JSON: {exc}") from None
        else:
            try:
                import yaml
            except ImportError:
                raise ValueError(f"sidecar {side} needs PyYAML to read (pip install pyyaml), or use JSON") from None
            data = yaml.safe_load(text)
        if not isinstance(data, dict):
            raise ValueError(f"sidecar {side} must hold a mapping of keys, but got {type(data).__name__}")
        unknown = sorted(set(data) - set(FLAT_KEYS))
        if unknown:
            raise ValueError(f"sidecar {side} has unknown keys {unknown}; known keys: {list(FLAT_KEYS)}")
        return data
    return {}


def from_flat(flat: dict[str, Any], source: str) -> ModelMeta:
    """Build a ModelMeta from flat keys (sidecar, Ultralytics, command line). Errors name what is missing."""
    missing = [k for k in ("task", "imgsz") if k not in flat]
    if missing:
        raise ValueError(f"model cannot be described: missing {missing}: {HOW_TO_DESCRIBE}")
    imgsz = flat["imgsz"]
    size = (int(imgsz), int(imgsz)) if isinstance(imgsz, (int, float)) else tuple(int(v) for v in imgsz)
    order = flat.get("channel_order", "RGB")
    n = 1 if order == "GRAY" else 3
    spec = PreprocessSpec(
        input_size=size,
        resize=flat.get("resize", "letterbox" if flat["task"] == "detect" else "resize"),
        pad_value=int(flat.get("pad_value", 114)),
        stride=int(flat.get("stride", 0)),
        channel_order=order,
        mean=tuple(flat.get("mean", [0.0] * n)),
        std=tuple(flat.get("std", [1.0] * n)),
    )
    return ModelMeta(
        task=flat["task"],
        preprocess=spec,
        class_names=tuple(flat.get("names", ())),
        head=flat.get("head", ""),
        anchors=tuple(tuple(a) for a in flat.get("anchors", ())),
        anchor_units=flat.get("anchor_units", "grid"),
        embedding_size=int(flat.get("embedding_size", 0)),
        distance=flat.get("distance", ""),
        threshold=float(flat.get("threshold", 0.0)),
        model_name=str(flat.get("model_name", "")),
        source=source,
    )


def read_metadata(
    props: dict[str, str], model_path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> ModelMeta:
    """Describe a model. Precedence: overrides > sidecar file > edgepipe metadata > Ultralytics metadata.

    props: the ONNX file's metadata_props. model_path: where to look for MODEL.json. overrides: flat keys from
    the command line (None values ignored). Raises ValueError naming the missing keys when nothing describes it.
    """
    extra = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(extra) - set(FLAT_KEYS))
    if unknown:
        raise ValueError(f"unknown metadata overrides {unknown}; known keys: {list(FLAT_KEYS)}")
    sidecar = read_sidecar(model_path) if model_path is not None else {}
    if METADATA_KEY in props:
        base = from_metadata_props(props)
        layered = {**sidecar, **extra}
        return _apply(base, layered, "sidecar" if sidecar else "options") if layered else base
    if "names" in props or props.get("author", "").startswith("Ultralytics"):
        flat, source = _ultralytics(props), "ultralytics"
    else:
        flat, source = {}, "sidecar"
    flat.update(sidecar)
    flat.update(extra)
    if extra and not sidecar and source == "sidecar":
        source = "options"
    return from_flat(flat, source)


def _apply(meta: ModelMeta, flat: dict[str, Any], source: str) -> ModelMeta:
    """meta with flat keys laid over it (sidecar or command line over the file's own metadata)."""
    merged = {
        "task": meta.task, "imgsz": list(meta.preprocess.input_size), "names": list(meta.class_names),
        "head": meta.head, "anchors": [list(a) for a in meta.anchors], "anchor_units": meta.anchor_units,
        "mean": list(meta.preprocess.mean), "std": list(meta.preprocess.std),
        "channel_order": meta.preprocess.channel_order, "resize": meta.preprocess.resize,
        "pad_value": meta.preprocess.pad_value, "stride": meta.preprocess.stride,
        "embedding_size": meta.embedding_size, "distance": meta.distance, "threshold": meta.threshold,
        "model_name": meta.model_name,
    }
    merged.update(flat)
    new = from_flat(merged, source)
    return replace(new, metrics=meta.metrics, version=meta.version, exported_at=meta.exported_at)
