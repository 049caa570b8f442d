"""Parser pieces the commands share: a model's options, a camera app's source and views, and printing results."""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, TypeVar

from edgepipe.apps.face.gallery.sqlite import explain
from edgepipe.apps.face.samples import DETECTOR, ENCODER, SamplesOptions
from edgepipe.apps.face.service import DEFAULT_GALLERY, FaceModels
from edgepipe.apps.options import ModelOptions
from edgepipe.apps.stream.events import PublishOptions
from edgepipe.apps.stream.loop import StreamOptions
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.metadata import FLAT_KEYS
from edgepipe.runtime.variant_report import VariantReport

T = TypeVar("T")


def finite(text: str) -> float:
    """argparse type of every number option: a finite float (nan and inf are refused with a one-line error)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, but got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, but got {text!r}")
    return value


def options_from_args(cls: type[T], args: argparse.Namespace) -> T:
    """cls (an options dataclass) built from the parsed args whose dest is one of its fields; its other fields keep
    their defaults, and arguments of other names (the command, --json, ...) are left out. Parsers take each
    option's default from the dataclass (OPTIONS.field), so it is defined there only."""
    return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})


def add_model_args(p: argparse.ArgumentParser, prefix: str = "", detector: bool = True) -> None:
    """--provider, --allow-fallback, --threads, --imgsz, --meta KEY=VALUE and for a detector --no-rect (with an
    optional option prefix)."""
    dash = f"--{prefix}-" if prefix else "--"
    dest = f"{prefix}_" if prefix else ""
    p.add_argument(f"{dash}provider", dest=f"{dest}provider", default=ModelOptions.provider,
                   help="auto (CUDA when present, else CPU), cuda or cpu (default: %(default)s)")
    p.add_argument(f"{dash}allow-fallback", dest=f"{dest}allow_fallback", action="store_true",
                   help="run on the CPU when CUDA cannot (logged as a warning)")
    p.add_argument(f"{dash}threads", dest=f"{dest}threads", type=int, default=ModelOptions.threads,
                   help="CPU intra-op threads (default: onnxruntime's)")
    p.add_argument(f"{dash}imgsz", dest=f"{dest}imgsz", type=int, nargs=2, metavar=("H", "W"),
                   help="input size for models with a dynamic input size")
    p.add_argument(f"{dash}meta", dest=f"{dest}meta", action="append", default=[], metavar="KEY=VALUE",
                   help=f"describe or correct the model's metadata; keys: {', '.join(FLAT_KEYS)}; values in JSON "
                   "where not plain text (e.g. names='[\"cat\",\"dog\"]')")
    if detector:
        p.add_argument(f"{dash}no-rect", dest=f"{dest}rect", action="store_false",
                       help="run a fixed-size YOLOv8 export at its own square size (default: re-targeted to the "
                       "frames' aspect, padded only to its stride: fewer pixels, the same weights)")


def model_options(path: Path, args: argparse.Namespace, prefix: str = "") -> ModelOptions:
    """The ModelOptions for path from the options add_model_args added."""
    dest = f"{prefix}_" if prefix else ""
    imgsz = getattr(args, f"{dest}imgsz")
    return ModelOptions(path, getattr(args, f"{dest}provider"), getattr(args, f"{dest}allow_fallback"),
                        getattr(args, f"{dest}threads"), tuple(imgsz) if imgsz else None,
                        parse_meta(getattr(args, f"{dest}meta")), getattr(args, f"{dest}rect", True))


def parse_meta(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE strings -> flat metadata overrides; a JSON value is parsed, anything else kept as text."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in FLAT_KEYS:
            raise UserError(f"--meta takes KEY=VALUE with KEY one of {', '.join(FLAT_KEYS)}, but got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def add_stream_args(p: argparse.ArgumentParser) -> None:
    """--retries, --max-frames, --loop, --serve and --show (the source itself is each command's own option)."""
    p.add_argument("--retries", type=int, default=StreamOptions.retries,
                   help="reconnect attempts for a lost camera or stream (default %(default)s)")
    p.add_argument("--max-frames", type=int, default=StreamOptions.max_frames,
                   help="stop (each source) after this many frames (0: no limit)")
    p.add_argument("--loop", action="store_true", help="play a video file again and again (demos, soak runs)")
    p.add_argument("--serve", metavar="HOST:PORT", default=StreamOptions.serve,
                   help="live view in the browser, e.g. 127.0.0.1:8080")
    p.add_argument("--show", action=argparse.BooleanOptionalAction, default=StreamOptions.show,
                   help="show a window (default: when a display is present)")


def stream_options(args: argparse.Namespace, sources: str | list[str]) -> StreamOptions:
    """The StreamOptions of the options add_stream_args added, for the command's source(s)."""
    return StreamOptions(sources, args.retries, args.max_frames, args.loop, args.serve, args.show)


def add_publish_args(p: argparse.ArgumentParser) -> None:
    """--publish mqtt://HOST:PORT/PREFIX and how: --camera, --publish-interval, --publish-frames, --publish-queue."""
    p.add_argument("--publish", metavar="URL",
                   help="send events (JSON, QoS 1) to an MQTT broker, mqtt://[USER[:PASSWORD]@]HOST[:PORT][/PREFIX] "
                   "(docs/events.md has the topics)")
    p.add_argument("--camera", default=PublishOptions.camera,
                   help="the camera's name in the messages and topics (default: from --source)")
    p.add_argument("--publish-interval", type=finite, default=PublishOptions.interval, metavar="S",
                   help="seconds of video between count messages (default %(default)s)")
    p.add_argument("--publish-frames", action="store_true", help="also publish every frame's detections")
    p.add_argument("--publish-queue", type=int, default=PublishOptions.queue, metavar="N",
                   help="messages kept while the broker is away; the oldest are dropped, counted (default "
                   "%(default)s)")


def publish_options(args: argparse.Namespace) -> PublishOptions | None:
    """The PublishOptions of the options add_publish_args added; None without --publish."""
    if not args.publish:
        return None
    return PublishOptions(args.publish, args.camera, args.publish_interval, args.publish_frames, args.publish_queue)


def emit(result: Any, as_json: bool) -> None:
    """Print a result: one JSON line with --json, else its lines()."""
    print(json.dumps(asdict(result)) if as_json else "\n".join(result.lines()))


def refusals(report: VariantReport, command: str, keep_failed: bool) -> int:
    """One line on stderr per variant over its budget; 1 when any was over it and keep_failed is off, else 0."""
    for f in report.refused:
        what = "kept over budget" if f.written else "not written"
        print(f"edgepipe {command}: {f.kind} {what}: {f.note}", file=sys.stderr)
    return 1 if report.refused and not keep_failed else 0


def add_face_model_args(p: argparse.ArgumentParser, shipped: bool = False) -> None:
    """--detector, --encoder and how faces are taken (--conf, --margin, --min-face), with both models' options.
    shipped: the models default to the ones edgepipe keeps with its source (else both are required)."""
    default = " (default: %(default)s, trained by edgepipe)" if shipped else ""
    p.add_argument("--detector", type=Path, required=not shipped, default=DETECTOR if shipped else None,
                   help="the face detector .onnx (task detect)" + default)
    p.add_argument("--encoder", type=Path, required=not shipped, default=ENCODER if shipped else None,
                   help="the face encoder .onnx (task embed)" + default)
    p.add_argument("--conf", type=finite, default=FaceModels.conf,
                   help="detector score threshold (default %(default)s)")
    p.add_argument("--margin", type=finite, default=FaceModels.margin,
                   help="share of the face box's longer side added around the crop (default %(default)s)")
    p.add_argument("--min-face", type=finite, default=FaceModels.min_face,
                   help="faces whose shorter side is below this many px are too far away: refused, or 'Step closer' "
                   "at the kiosk (default %(default)s)")
    add_model_args(p, "detector")
    add_model_args(p, "encoder", detector=False)


def add_sample_args(p: argparse.ArgumentParser) -> None:
    """What `face samples` and `demo kiosk` generate: --people, --photos, --unknown, --fps, --seed."""
    p.add_argument("--people", type=int, default=SamplesOptions.people, help="people to enroll (default %(default)s)")
    p.add_argument("--photos", type=int, default=SamplesOptions.photos,
                   help="enrollment photos of each (default %(default)s)")
    p.add_argument("--unknown", type=int, default=SamplesOptions.unknown,
                   help="people never enrolled, who visit once (default %(default)s)")
    p.add_argument("--fps", type=int, default=SamplesOptions.fps,
                   help="the kiosk clip's frame rate (default %(default)s)")
    p.add_argument("--seed", type=int, default=SamplesOptions.seed, help="the photos' and the clip's seed")


def face_models(args: argparse.Namespace) -> FaceModels:
    """The FaceModels of the options add_face_model_args added."""
    return FaceModels(model_options(args.detector, args, "detector"), model_options(args.encoder, args, "encoder"),
                      args.conf, args.margin, args.min_face)


def add_gallery_args(p: argparse.ArgumentParser, reencode: bool = True, threshold: bool = False) -> None:
    """--gallery; --reencode for the commands that embed faces; --threshold for those that decide."""
    p.add_argument("--gallery", default=str(DEFAULT_GALLERY), metavar="FILE|URL",
                   help="the gallery: an SQLite file (default: %(default)s), or a PostgreSQL server shared by many "
                   "kiosks, postgresql://USER@HOST:PORT/DATABASE (the password from PGPASSWORD or ~/.pgpass)")
    if reencode:
        p.add_argument("--reencode", action="store_true",
                       help="the gallery was enrolled with another encoder: re-embed its stored crops with --encoder")
    if threshold:
        p.add_argument("--threshold", type=finite,
                       help="accept when distance <= this (default: the gallery's calibrated threshold, else the "
                       "encoder's metadata threshold)")


def gallery_errors(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """func with SQLite's own errors told as they are (read-only, damaged, locked, disk full): one line."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except sqlite3.Error as exc:
            raise explain(exc, str(args.gallery)) from exc

    return run
