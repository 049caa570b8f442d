"""What a source argument names: a camera, a stream, a video file, or image files (a file, a folder, a glob)."""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.files import Input

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
SOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # a source's name in a run with several: NAME=SOURCE
SOURCE_HELP = "a camera index (0), /dev/videoN, a video file, an image, a folder or glob of images, or a stream URL"


def read_image(path: str | Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 BGR; a clear error for a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"image {path} not found")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f"{path} is not an image OpenCV can read (corrupt, or not jpg/png/bmp/...)")
    return image


@dataclass(frozen=True)
class SourceSpec:
    """What a SOURCE argument names. kind: "camera" | "stream" | "video" | "images".

    target: the camera index (int), device path, URL or video path; paths: the image files for "images".
    live: cameras and streams (keep only the newest frame, reconnect when lost); files are read in full, in order.
    """

    kind: str
    target: int | str
    paths: tuple[str, ...] = ()

    @property
    def live(self) -> bool:
        return self.kind in ("camera", "stream")

    def inputs(self, what: str) -> list[Input]:
        """The files this source reads (a video; a folder and its images), for the output checks."""
        if self.kind == "video":
            return [Input(what, Path(self.target))]
        if self.kind == "images":
            folder = [Input(what, Path(self.target))] if Path(self.target).is_dir() else []
            return folder + [Input(what, Path(p)) for p in self.paths]
        return []

    def describe(self) -> str:
        if self.kind == "images":
            return f"{len(self.paths)} image(s) from {self.target}"
        return f"{self.kind} {self.target}"


def parse_source(text: str | int) -> SourceSpec:
    """Name a source from its command-line text; files and folders must exist (FileNotFoundError otherwise)."""
    text = str(text).strip()
    if not text:
        raise UserError(f"source is empty: expected {SOURCE_HELP}")
    if text.isdigit():
        return SourceSpec("camera", int(text))
    if text.startswith("/dev/video"):
        return SourceSpec("camera", text)
    if text.lower().startswith(STREAM_SCHEMES):
        return SourceSpec("stream", text)
    path = Path(text)
    if path.is_dir():
        files = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UserError(f"folder {path} holds no images (expected files ending in {', '.join(IMAGE_SUFFIXES)})")
        return SourceSpec("images", text, tuple(files))
    if any(c in text for c in "*?["):
        files = sorted(p for p in glob.glob(text, recursive=True) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UserError(f"glob {text!r} matches no images (expected files ending in {', '.join(IMAGE_SUFFIXES)})")
        return SourceSpec("images", text, tuple(files))
    if not path.is_file():
        raise UserError(f"source {text!r} not found: expected {SOURCE_HELP}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return SourceSpec("images", text, (text,))
    return SourceSpec("video", text)
