"""The gallery export file (JSON): people, embeddings, crops, encoder and threshold, written and read back checked."""

from __future__ import annotations

import base64
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.apps.face.gallery.values import (
    SCHEMA_VERSION,
    DecisionThreshold,
    EncoderId,
    as_vectors,
    check_distance,
    check_name,
    check_rate,
    check_text,
    check_version,
    decode_png,
    encoder_mismatch,
)
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.files import write_atomic

EXPORT_FORMAT = "edgepipe-face-gallery"


@dataclass(frozen=True, eq=False)
class ExportedPerson:
    """One person of an export file: vectors (K, D) float32 and K (crop PNG bytes or None, source, created)."""

    name: str
    created: float
    vectors: np.ndarray
    extras: list[tuple[bytes | None, str, float]]


@dataclass(frozen=True, eq=False)
class GalleryExport:
    """What an export file holds: the encoder, the threshold (None when none was set) and the people."""

    encoder: EncoderId
    threshold: DecisionThreshold | None
    people: list[ExportedPerson]


def write_export(path: Path, export: GalleryExport) -> None:
    """Write export as JSON (embeddings as float lists, crops as base64 PNG) atomically: a temporary file in the same
    folder, fsynced, renamed over path."""
    people = [
        {
            "name": p.name,
            "created": p.created,
            "embeddings": [
                {
                    "vector": v.tolist(),  # float32 -> Python float -> JSON -> float32 is exact
                    "crop_png": None if crop is None else base64.b64encode(crop).decode("ascii"),
                    "source": source,
                    "created": created,
                }
                for v, (crop, source, created) in zip(p.vectors, p.extras, strict=True)
            ],
        }
        for p in export.people
    ]
    doc = {
        "format": EXPORT_FORMAT,
        "schema_version": SCHEMA_VERSION,
        "encoder": asdict(export.encoder),
        "threshold": None if export.threshold is None else asdict(export.threshold),
        "people": people,
    }
    write_atomic(path, json.dumps(doc, allow_nan=False).encode("utf-8"))


def read_export(path: Path, encoder: EncoderId, fix: str) -> GalleryExport:
    """Read and check an export file for a gallery of encoder: its format, schema version, encoder (a UserError
    ending in fix when it differs), people (valid, none twice) and threshold."""
    doc = load_export(path)
    stored = parse_encoder(doc.get("encoder"), path)
    if (stored.sha256, stored.embedding_size) != (encoder.sha256, encoder.embedding_size):
        raise encoder_mismatch(f"gallery export {path}", stored, encoder, fix)
    entries = _as_list(doc.get("people"), "people", path)
    people = [parse_person(p, encoder.embedding_size, f"{path}: people[{i}]") for i, p in enumerate(entries)]
    names = [p.name for p in people]
    if len(set(names)) != len(names):
        raise UserError(f"{path} lists some people twice: {sorted({n for n in names if names.count(n) > 1})}")
    return GalleryExport(stored, parse_threshold(doc.get("threshold"), path), people)


def parse_person(entry: Any, size: int, where: str) -> ExportedPerson:
    """One person of an export file, checked: a valid name, K >= 1 finite vectors of the size, decodable crops."""
    if not isinstance(entry, dict) or not isinstance(entry.get("embeddings"), list):
        raise UserError(f"{where} must be an object with name, created and a list of embeddings")
    try:
        name = check_name(entry.get("name"))
    except ValueError as exc:
        raise UserError(f"{where}: {exc}") from exc
    rows = entry["embeddings"]
    if not all(isinstance(r, dict) and isinstance(r.get("vector"), list) for r in rows):
        raise UserError(f"{where}.embeddings must be objects holding a vector (a list of numbers)")
    try:
        vectors = np.array([r["vector"] for r in rows], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{where}.embeddings: every vector must be a list of {size} numbers ({exc})") from exc
    extras = [
        (
            _parse_crop(r.get("crop_png"), f"{where}.embeddings[{j}].crop_png"),
            check_text(r.get("source", ""), f"{where}.embeddings[{j}].source", allow_empty=True),
            _as_time(r.get("created"), f"{where}.embeddings[{j}].created"),
        )
        for j, r in enumerate(rows)
    ]
    created = _as_time(entry.get("created"), f"{where}.created")
    return ExportedPerson(name, created, as_vectors(vectors, size, f"{where}.embeddings"), extras)


def export_encoder(path: str | os.PathLike) -> EncoderId:
    """The encoder recorded in a file written by export_json (to create a gallery to import it into)."""
    path = Path(path)
    return parse_encoder(load_export(path).get("encoder"), path)


def load_export(path: Path) -> dict[str, Any]:
    """Read an export_json file and check its format and schema version."""
    if not path.is_file():
        raise UserError(f"gallery export {path} not found: check the path")
    try:
        doc = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not a gallery export: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
        raise UserError(f"{path} is not a gallery export: format must be {EXPORT_FORMAT!r} (written by export_json)")
    check_version(doc.get("schema_version"), str(path))
    return doc


def _as_list(value: Any, name: str, path: Path) -> list[Any]:
    if not isinstance(value, list):
        raise UserError(f"{path}: {name} must be a list, but got {type(value).__name__}")
    return value


def _as_time(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{name} must be a time in Unix seconds, but got {value!r}")
    return float(value)


def parse_encoder(value: Any, path: Path) -> EncoderId:
    if not isinstance(value, dict):
        raise UserError(f"{path}: encoder must be an object with sha256, embedding_size and name, but got {value!r}")
    return EncoderId(value.get("sha256"), value.get("embedding_size"), value.get("name"))


def parse_threshold(value: Any, path: Path) -> DecisionThreshold | None:
    """An exported threshold, or None when the file has none."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UserError(f"{path}: threshold must be an object or null, but got {value!r}")
    return DecisionThreshold(
        check_distance(value.get("value"), f"{path}: threshold.value"),
        check_rate(value.get("far"), f"{path}: threshold.far"),
        check_rate(value.get("eer"), f"{path}: threshold.eer"),
        _as_time(value.get("when"), f"{path}: threshold.when"),
    )


def _parse_crop(value: Any, name: str) -> bytes | None:
    """A base64 PNG (checked to decode) or None."""
    if value is None:
        return None
    try:
        data = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except ValueError as exc:
        raise UserError(f"{name} must be base64 PNG bytes or null, but it is not valid base64") from exc
    decode_png(data, name)
    return data
