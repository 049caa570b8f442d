"""Video files written by edgepipe: one table of codecs by file suffix, and a checked cv2.VideoWriter."""

from __future__ import annotations

from pathlib import Path

import cv2

from edgepipe.postprocess.errors import UserError

# FourCC by suffix. HFYU (HuffYUV) is lossless: a .mkv holds exactly the frames written (the generated test videos'
# labels match their pixels); mp4v and MJPG are lossy but small.
VIDEO_CODECS = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "HFYU"}


def video_codec(path: str | Path, what: str = "path") -> str:
    """The FourCC a video at path is written with, by its suffix (any case). what: how an error names the path
    (e.g. "--save"). Raises UserError for a suffix not in VIDEO_CODECS."""
    suffix = Path(path).suffix.lower()
    if suffix not in VIDEO_CODECS:
        raise UserError(f"{what} must end in one of {', '.join(VIDEO_CODECS)}, but got {Path(path).name!r}")
    return VIDEO_CODECS[suffix]


def open_video_writer(path: str | Path, fps: float, size: tuple[int, int], what: str = "path") -> cv2.VideoWriter:
    """An opened cv2.VideoWriter for path (codec by video_codec), creating its folder. size: (height, width) of
    every frame, as image.shape[:2]; frames are written (height, width, 3) BGR uint8. The caller releases it.

    Raises UserError for a bad suffix, fps <= 0, a size that is not two positive integers, or a writer that does
    not open (a folder that cannot be written, a codec missing from this OpenCV build)."""
    codec = video_codec(path, what)
    if not fps > 0:
        raise UserError(f"fps must be > 0, but got {fps!r}")
    if len(size) != 2 or any(int(v) != v or v < 1 for v in size):
        raise UserError(f"size must be (height, width) in whole pixels >= 1, but got {size!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (int(size[1]), int(size[0])))
    if not writer.isOpened():
        raise UserError(f"cannot write video {path} (codec {codec}): is the folder writable and the codec in this "
                        f"OpenCV build?")
    return writer
