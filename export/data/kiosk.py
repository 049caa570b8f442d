"""A generated face-check kiosk video (visitors walk in, stay, walk out) and plain-background enrollment photos.

Faces are lfw_subset crops (export.data.faces): each shown face is one augmented view from face_views,
skin-tinted and cut to its inscribed ellipse as paste_faces does. Boxes are xyxy pixel edges, tight around the
visible face pixels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgepipe.export.data.backgrounds import random_background
from edgepipe.export.data.detection import VIDEO_MIN_VISIBLE
from edgepipe.export.data.faces import SKIN_GAIN, face_views
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.video import open_video_writer, video_codec

FACE_PX = (120, 200)  # face side of a visitor at the kiosk, pixels
SMALL_PX = (28, 44)  # face side of the visitor who stays far away (under the kiosk's --min-face, 80 px: not checked)
WALK_S = (0.8, 1.2)  # seconds to walk in, and again to walk out
STAY_S = (1.0, 2.0)  # seconds near the center
GAP_S = (2.5, 4.0)  # seconds of empty frames before each visit and after the last: visitors come apart
MIN_VIDEO = (240, 320)  # (height, width): the largest face fits with room to move
ENROLL_SIZE = (480, 640)  # (height, width) of an enrollment photo: a kiosk camera frame
ENROLL_FACE_PX = (120, 150)  # face side in an enrollment photo: a visitor standing at the kiosk
ENROLL_BLUR = 12.0  # Gaussian sigma (px) of an enrollment photo's room: out of focus behind the person, as a portrait


@dataclass(frozen=True)
class _Visitor:
    """One visit as drawn: face (s, s, 3) BGR uint8 cut by mask (s, s) bool, top-left corners xs, ys (T,) int."""

    identity: int
    enrolled: bool
    small: bool
    face: np.ndarray
    mask: np.ndarray
    xs: np.ndarray
    ys: np.ndarray


def make_kiosk_video(
    path: str | Path,
    enrolled: np.ndarray,
    unknown: np.ndarray,
    size: tuple[int, int] = (480, 640),
    fps: int = 15,
    seed: int = 0,
    background: np.ndarray | None = None,
) -> Path:
    """Write a kiosk test video: one visitor at a time walks in, stays near the center, walks out.

    enrolled: (E, h, w) uint8 gray faces, E >= 1; unknown: (U, h, w) uint8 gray faces, U >= 0. Identity numbers
    are rows of np.concatenate([enrolled, unknown]): identity i is enrolled iff i < E. Visits, in a shuffled
    order with GAP_S of empty frames between them: every enrolled identity twice, every unknown identity once, each
    face FACE_PX wide, and one extra visit of a random enrolled identity whose face stays SMALL_PX (far away).
    A visitor enters from the left or right edge, walks for WALK_S, stays for STAY_S near the center (swaying
    a few pixels), walks out at the other edge. path: a suffix of runtime.video.VIDEO_CODECS (.mkv: lossless).
    size: (height, width), at least MIN_VIDEO. background: (H, W, 3) BGR uint8 of that size, or None for a
    random_background. Deterministic per seed.

    Writes the ground truth to path.with_suffix(".jsonl"), one line per frame: {"frame": i, "faces": [{"box":
    [x1, y1, x2, y2], "identity": int, "enrolled": bool}]}, a face labeled while at least VIDEO_MIN_VISIBLE of
    its pixels are in view; and the visits to path.with_suffix(".visits.json"): [{"identity", "enrolled",
    "start", "end", "small"}], start and end the first and last labeled frame (inclusive), in time order.
    Returns the ground-truth path.
    """
    path = Path(path)
    video_codec(path)  # a bad suffix is refused before any work
    enrolled, unknown = _check_faces(enrolled, "enrolled", 1), _check_faces(unknown, "unknown", 0)
    h_img, w_img = _check_video_args(size, fps)
    rng = np.random.default_rng(seed)
    still = random_background(rng, (h_img, w_img)) if background is None else np.asarray(background)
    if still.shape != (h_img, w_img, 3) or still.dtype != np.uint8:
        raise UserError(f"background must be ({h_img}, {w_img}, 3) uint8 like size, but got {still.shape} "
                         f"{still.dtype}")
    visitors = _visitors(rng, enrolled, unknown, (h_img, w_img), fps)
    starts = _schedule(rng, [len(v.xs) for v in visitors], fps)
    n_frames = starts[-1] + len(visitors[-1].xs) + _seconds(rng, GAP_S, fps)
    writer = open_video_writer(path, fps, (h_img, w_img))
    truth_path = path.with_suffix(".jsonl")
    visits = [{"identity": v.identity, "enrolled": v.enrolled, "start": -1, "end": -1, "small": v.small}
              for v in visitors]
    try:
        with truth_path.open("w") as truth:
            for i in range(n_frames):
                frame, faces, k = _kiosk_frame(still, visitors, starts, i)
                writer.write(frame)
                truth.write(json.dumps({"frame": i, "faces": faces}) + "\n")
                if faces:
                    visits[k]["start"] = i if visits[k]["start"] < 0 else visits[k]["start"]
                    visits[k]["end"] = i
    finally:
        writer.release()
    path.with_suffix(".visits.json").write_text(json.dumps(visits, indent=1))
    return truth_path


def _check_faces(faces: np.ndarray, name: str, least: int) -> np.ndarray:
    arr = np.asarray(faces)
    if arr.ndim != 3 or arr.dtype != np.uint8 or len(arr) < least or min(arr.shape[1:]) < 1:
        raise UserError(f"{name} must be (K, h, w) uint8 gray faces with K >= {least}, but got shape {arr.shape} "
                         f"dtype {arr.dtype}: pass identity_splits()[split].faces or a slice of it")
    return arr


def _check_video_args(size: tuple[int, int], fps: int) -> tuple[int, int]:
    if len(size) != 2 or int(size[0]) < MIN_VIDEO[0] or int(size[1]) < MIN_VIDEO[1]:
        raise UserError(f"size must be (height, width) of at least {MIN_VIDEO} to hold {FACE_PX[1]} px faces, "
                         f"but got {size!r}")
    if int(fps) != fps or fps < 1:
        raise UserError(f"fps must be an integer >= 1, but got {fps!r}")
    return int(size[0]), int(size[1])


def _seconds(rng: np.random.Generator, span: tuple[float, float], fps: int) -> int:
    """A random duration in span (seconds), as a whole number of frames >= 1."""
    return max(1, round(rng.uniform(*span) * fps))


def _visitors(
    rng: np.random.Generator, enrolled: np.ndarray, unknown: np.ndarray, size: tuple[int, int], fps: int
) -> list[_Visitor]:
    """All visits in a shuffled order: each enrolled identity twice, each unknown once, one small enrolled face."""
    n_e = len(enrolled)
    who = [(i, False) for i in range(n_e)] * 2 + [(n_e + j, False) for j in range(len(unknown))]
    who.append((int(rng.integers(n_e)), True))
    out = []
    for k in rng.permutation(len(who)):
        identity, small = who[k]
        face = enrolled[identity] if identity < n_e else unknown[identity - n_e]
        out.append(_visitor(rng, face, identity, identity < n_e, small, size, fps))
    return out


def _visitor(
    rng: np.random.Generator, face: np.ndarray, identity: int, enrolled: bool, small: bool,
    size: tuple[int, int], fps: int,
) -> _Visitor:
    """One visit: its face view and its path, entering at one edge, staying near the center, leaving at the other."""
    h_img, w_img = size
    s = int(rng.integers(*SMALL_PX)) if small else int(rng.integers(FACE_PX[0], FACE_PX[1] + 1))
    view, mask = _oval_face(rng, face, s)
    n_in, n_stay, n_out = _seconds(rng, WALK_S, fps), _seconds(rng, STAY_S, fps), _seconds(rng, WALK_S, fps)
    stop = w_img / 2 - s / 2 + rng.uniform(-0.08, 0.08) * w_img  # the left edge while standing near the center
    enter, leave = (-s, w_img) if rng.random() < 0.5 else (w_img, -s)
    sway = 3 * np.sin(np.arange(n_stay) * (2 * np.pi / fps))  # (n_stay,): a few pixels, once a second
    xs = np.concatenate([np.linspace(enter, stop, n_in, endpoint=False), stop + sway,
                         np.linspace(stop, leave, n_out + 1)[1:]])  # (T,)
    y0 = float(np.clip(0.45 * h_img - s / 2 + rng.uniform(-0.05, 0.05) * h_img, 3, h_img - s - 3))
    ys = y0 + 2 * np.sin(np.arange(len(xs)) * (4 * np.pi / fps))  # (T,): a step bob, within 3 px
    return _Visitor(identity, enrolled, small, view, mask, np.round(xs).astype(int), np.round(ys).astype(int))


def _oval_face(rng: np.random.Generator, face: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray]:
    """One view of face as paste_faces draws it: (s, s, 3) BGR uint8 skin-tinted, and its ellipse (s, s) bool."""
    view = face_views(face, 1, rng, s)[0]
    tinted = np.clip(view * rng.uniform(*SKIN_GAIN), 0, 255).astype(np.uint8)  # (s, s, 3)
    oval = cv2.ellipse(np.zeros((s, s), np.uint8), (s * 8 - 8, s * 8 - 8), (s * 8 - 8, s * 8 - 8), 0, 0, 360,
                       1, -1, cv2.LINE_8, 4).astype(bool)  # inscribed ellipse, center and axes (s-1)/2
    return tinted, oval


def _schedule(rng: np.random.Generator, lengths: list[int], fps: int) -> list[int]:
    """First frame of each visit: visits back to back, each after an empty gap of GAP_S."""
    starts, t = [], 0
    for n in lengths:
        t += _seconds(rng, GAP_S, fps)
        starts.append(t)
        t += n
    return starts


def _kiosk_frame(
    still: np.ndarray, visitors: list[_Visitor], starts: list[int], i: int
) -> tuple[np.ndarray, list[dict], int]:
    """Frame i: the visitor on screen (if any) over still (H, W, 3). Returns frame, labeled faces, visit index."""
    frame = still.copy()
    k = int(np.searchsorted(starts, i, side="right")) - 1  # the last visit started at or before frame i
    if k < 0 or i - starts[k] >= len(visitors[k].xs):
        return frame, [], k
    v = visitors[k]
    x, y = int(v.xs[i - starts[k]]), int(v.ys[i - starts[k]])
    s = v.mask.shape[0]
    x0, x1 = max(0, x), min(frame.shape[1], x + s)
    if x0 >= x1:
        return frame, [], k
    mask = v.mask[:, x0 - x : x1 - x]  # (s, x1 - x0): the part in view
    frame[y : y + s, x0:x1][mask] = v.face[:, x0 - x : x1 - x][mask]
    if mask.sum() < VIDEO_MIN_VISIBLE * v.mask.sum():
        return frame, [], k
    rows, cols = np.nonzero(mask)
    box = [x0 + int(cols.min()), y + int(rows.min()), x0 + int(cols.max()) + 1, y + int(rows.max()) + 1]
    return frame, [{"box": box, "identity": v.identity, "enrolled": v.enrolled}], k


def enrollment_images(
    faces: np.ndarray, n: int, seed: int | list[int] = 0, background: np.ndarray | None = None
) -> list[np.ndarray]:
    """n enrollment photos per identity: one face view (as the kiosk video draws faces) in a room.

    faces: (K, h, w) uint8 gray. Each photo: ENROLL_SIZE (height, width), a random_background blurred by
    ENROLL_BLUR (or a copy of background, (*ENROLL_SIZE, 3) uint8), one face of ENROLL_FACE_PX near the center.
    Returns K * n (*ENROLL_SIZE, 3) BGR uint8 images, identity-major (photos k * n .. k * n + n - 1 show faces[k]).
    Deterministic per seed (an int, or a list of ints as numpy's default_rng takes).
    """
    arr = _check_faces(faces, "faces", 0)
    if int(n) != n or n < 1:
        raise UserError(f"n must be an integer >= 1 (photos per identity), but got {n!r}")
    if background is not None and (background.shape != (*ENROLL_SIZE, 3) or background.dtype != np.uint8):
        raise UserError(f"background must be {(*ENROLL_SIZE, 3)} uint8, but got {background.shape} {background.dtype}")
    rng = np.random.default_rng(seed)
    photos = []
    for face in arr:
        for _ in range(int(n)):
            photo = _room(rng) if background is None else background.copy()
            s = int(rng.integers(ENROLL_FACE_PX[0], ENROLL_FACE_PX[1] + 1))
            view, mask = _oval_face(rng, face, s)
            y, x = (int((side - s) / 2 + rng.integers(-10, 11)) for side in ENROLL_SIZE)
            photo[y : y + s, x : x + s][mask] = view[mask]
            photos.append(photo)
    return photos


def _room(rng: np.random.Generator) -> np.ndarray:
    """The room behind a person in an enrollment photo: a random_background out of focus, (*ENROLL_SIZE, 3) BGR."""
    return cv2.GaussianBlur(random_background(rng, ENROLL_SIZE), (0, 0), ENROLL_BLUR)
