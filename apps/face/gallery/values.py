"""The face gallery's values: the encoder identity, people, audit entries, thresholds, what a kiosk shows of its
gallery, and their checks."""

from __future__ import annotations

import difflib
import hashlib
import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgepipe.postprocess.embeddings import Gallery
from edgepipe.postprocess.errors import UserError

SCHEMA_VERSION = 1


NAME_MAX = 64


NAME_PUNCTUATION = " -'._"


NAME_RULE = (
    f"1 to {NAME_MAX} characters: letters (any script), digits, spaces and - ' . _, with no leading or trailing space"
)


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


SHA_SHOWN = 12  # hex digits of an encoder's sha256 shown in messages


@dataclass(frozen=True)
class EncoderId:
    """The encoder that made a gallery's embeddings: sha256 of its ONNX bytes (64 hex digits), its embedding size D
    and a readable name (the model's file name)."""

    sha256: str
    embedding_size: int
    name: str

    def __post_init__(self) -> None:
        is_hex = isinstance(self.sha256, str) and set(self.sha256) <= set("0123456789abcdef")
        if not (is_hex and len(self.sha256) == 64):
            raise UserError(
                f"sha256 must be 64 lowercase hex digits, but got {self.sha256!r}: "
                "use EncoderId.of_file(model_path, embedding_size)"
            )
        check_positive_int(self.embedding_size, "embedding_size")
        if not (isinstance(self.name, str) and self.name):
            raise UserError(f"name must be a non-empty string (the model's file name), but got {self.name!r}")

    @classmethod
    def of_file(cls, path: str | os.PathLike, embedding_size: int) -> EncoderId:
        """The identity of the ONNX encoder at path, whose embeddings have embedding_size dimensions."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"encoder model {path} not found: pass the .onnx file that makes the embeddings")
        return cls(hashlib.sha256(path.read_bytes()).hexdigest(), embedding_size, path.name)

    def describe(self) -> str:
        """'NAME (sha256 abc123..., 128-d)'."""
        return f"{self.name} (sha256 {self.sha256[:SHA_SHOWN]}..., {self.embedding_size}-d)"


@dataclass(frozen=True)
class Person:
    """An enrolled person: name, how many embeddings they have, when they were first enrolled (Unix seconds)."""

    name: str
    n_embeddings: int
    created: float


@dataclass(frozen=True)
class AuditEntry:
    """One audit-log entry: time (Unix seconds), source (camera, operator), decision, best distance (nan for
    enroll / remove / import, inf when the gallery was empty) and the person's name ("" when none)."""

    time: float
    source: str
    decision: str
    distance: float
    name: str


@dataclass(frozen=True)
class DecisionThreshold:
    """The gallery's decision threshold (accept when distance <= value) and its calibration: the false-accept and
    equal error rates measured for it (None when not given) and when it was set (Unix seconds)."""

    value: float
    far: float | None
    eer: float | None
    when: float


@dataclass(frozen=True, eq=False)
class Enrolled:
    """The gallery as arrays for postprocess.identify: one row per stored embedding, people in enrollment order.

    embeddings: (N, D) float32, read-only (N may be 0). person_ids: (N,) int64, read-only, each row's index into
    names. names: (P,) the people's names. Built from them: gallery, a postprocess Gallery of the embeddings (its
    array is embeddings, not a copy), and labels, (N,) each row's name: identify(q, e.gallery, e.labels, t).
    """

    embeddings: np.ndarray
    person_ids: np.ndarray
    names: tuple[str, ...]
    gallery: Gallery = field(init=False, repr=False)
    labels: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        gallery = Gallery(self.embeddings)
        ids = np.array(self.person_ids, dtype=np.int64)  # a copy, made read-only below
        if ids.shape != (len(gallery),) or (ids.size and not (ids.min() >= 0 and ids.max() < len(self.names))):
            raise UserError(
                f"person_ids must have shape ({len(gallery)},) with values in [0, {len(self.names)}), "
                f"but got shape {ids.shape}"
            )
        ids.flags.writeable = False
        object.__setattr__(self, "gallery", gallery)
        object.__setattr__(self, "embeddings", gallery.embeddings)
        object.__setattr__(self, "person_ids", ids)
        object.__setattr__(self, "labels", tuple(self.names[i] for i in ids.tolist()))


def check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UserError(f"{name} must be an integer >= 1, but got {value!r}")
    return int(value)


def check_name(name: str) -> str:
    """A person's name in NFC form (composed accents), or UserError stating the rule (NAME_RULE)."""
    if not isinstance(name, str):
        raise UserError(f"name must be a string, {NAME_RULE}; but got {type(name).__name__}")
    name = unicodedata.normalize("NFC", name)
    if not 1 <= len(name) <= NAME_MAX:
        raise UserError(f"name must be {NAME_RULE}; but got {len(name)} characters: {name[:80]!r}")
    if name != name.strip(" "):
        raise UserError(f"name must be {NAME_RULE}; but got {name!r} (remove the outer spaces)")
    for i, ch in enumerate(name):
        if not (ch in NAME_PUNCTUATION or unicodedata.category(ch)[0] in "LM" or unicodedata.category(ch) == "Nd"):
            raise UserError(f"name must be {NAME_RULE}; but got {name!r}: character {ch!r} at {i} is not allowed")
    return name


def as_vectors(x: np.ndarray, size: int, what: str) -> np.ndarray:
    """Check embeddings: (K, size) float, K >= 1, finite as float32. Returns (K, size) float32 (values as given)."""
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] != size:
        raise UserError(
            f"{what} must have shape (K, {size}) with K >= 1 ({size} = the encoder's embedding size), "
            f"but got shape {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.floating):
        raise UserError(f"{what} must be a float array (float32), but got dtype {arr.dtype}")
    with np.errstate(over="ignore"):
        out = arr.astype(np.float32)
    if not np.isfinite(out).all():
        bad = sorted({int(r) for r in np.flatnonzero(~np.isfinite(out).all(axis=1))})
        raise UserError(f"{what} must be finite in float32, but rows {bad} hold NaN, inf or values beyond 3.4e38")
    return out


def encode_crops(crops: Sequence[np.ndarray] | None, k: int) -> list[bytes | None]:
    """crops: None, or k face crops, each (H, W) gray or (H, W, 3) BGR uint8. Returns k PNG byte strings (or Nones)."""
    if crops is None:
        return [None] * k
    if len(crops) != k:
        raise UserError(f"crops must hold one image per embedding ({k}), but got {len(crops)}: or pass crops=None")
    return [_png(c, i) for i, c in enumerate(crops)]


def _png(crop: np.ndarray, i: int) -> bytes:
    """crop: (H, W) or (H, W, 3) uint8, H, W >= 1. Returns its lossless PNG bytes."""
    arr = np.asarray(crop)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3) or 0 in arr.shape:
        raise UserError(
            f"crops[{i}] must be a (H, W) gray or (H, W, 3) BGR uint8 image, but got shape {arr.shape} {arr.dtype}"
        )
    ok, buf = cv2.imencode(".png", arr)
    if not ok:
        raise UserError(f"crops[{i}] could not be encoded as PNG (shape {arr.shape})")
    return buf.tobytes()


def decode_png(data: bytes, what: str) -> np.ndarray:
    """PNG bytes -> the (H, W) or (H, W, 3) uint8 image they hold."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data[:8] == PNG_MAGIC else None
    if img is None:
        raise UserError(f"{what} is not a readable PNG image ({len(data)} bytes starting {bytes(data[:8])!r})")
    return img


def encoder_mismatch(where: str, stored: EncoderId, model: EncoderId, fix: str) -> UserError:
    return UserError(
        f"{where} was enrolled with encoder {stored.describe()}, but the model is {model.describe()}: {fix}"
    )


def _newer_schema(where: str, version: Any) -> UserError:
    return UserError(
        f"{where} has schema version {version}, newer than this edgepipe reads ({SCHEMA_VERSION}): upgrade edgepipe"
    )


def check_version(version: Any, where: str) -> None:
    if not isinstance(version, int):
        raise UserError(f"{where} is damaged: schema_version must be an integer, but got {version!r}")
    if version > SCHEMA_VERSION:
        raise _newer_schema(where, version)


def check_text(value: Any, name: str, allow_empty: bool) -> str:
    if not isinstance(value, str) or not (value or allow_empty):
        raise UserError(f"{name} must be a {'' if allow_empty else 'non-empty '}string, but got {value!r}")
    return value


def check_rate(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not 0 <= value <= 1:
        raise UserError(f"{name} must be a rate in [0, 1] or None, but got {value!r}")
    return float(value)


def check_distance(value: Any, name: str) -> float:
    """A distance >= 0, finite or inf (inf: the gallery was empty)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not value >= 0:
        raise UserError(f"{name} must be a number >= 0 (inf allowed), but got {value!r}")
    return float(value)


def vector_blob(v: np.ndarray) -> bytes:
    """v: (D,) float32. Returns its 4 * D bytes, little-endian."""
    return np.ascontiguousarray(v, dtype="<f4").tobytes()


def close_names(name: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3)
    if close:
        return "close names: " + ", ".join(repr(n) for n in close)
    return f"no close name among the {len(names)} enrolled (`edgepipe face list` names them)"


def check_meta(meta: dict[str, Any], where: str, encoder: EncoderId | None) -> EncoderId:
    """A gallery's meta values checked: its schema version, the encoder stored in it and (when given) the model's
    match with it. Returns the stored encoder."""
    check_version(meta.get("schema_version"), where)
    try:
        stored = EncoderId(meta["encoder_sha256"], int(meta["encoder_size"]), meta["encoder_name"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{where} is damaged: its meta table lacks a valid encoder ({exc})") from exc
    if encoder is not None and (encoder.sha256, encoder.embedding_size) != (stored.sha256, stored.embedding_size):
        raise encoder_mismatch(where, stored, encoder, "re-enroll, or run with --reencode")
    return stored


@dataclass(frozen=True)
class GalleryStatus:
    """What a kiosk shows about its gallery: the people and embeddings it identifies against, their generation, and
    whether they are current (online; False while the server is unreachable, note then says since when)."""

    people: int
    embeddings: int
    generation: int
    online: bool = True
    note: str = ""


def enrolled_from(people: Sequence[tuple[int, str]], person_ids: np.ndarray, vectors: np.ndarray) -> Enrolled:
    """The matrix for identify. people: (id, name) by ascending id; person_ids: (N,) int64, each row's person id;
    vectors: (N, D) float32."""
    ids = np.array([person_id for person_id, _ in people], dtype=np.int64)
    return Enrolled(vectors, np.searchsorted(ids, person_ids), tuple(name for _, name in people))


def check_entry(source: str, decision: str, distance: float, name: str, when: float) -> AuditEntry:
    """An audit entry with its fields checked: source and name strings, decision non-empty, distance >= 0."""
    return AuditEntry(when, check_text(source, "source", allow_empty=True),
                      check_text(decision, "decision", allow_empty=False), check_distance(distance, "distance"),
                      check_text(name, "name", allow_empty=True))
