"""The kiosk video and enrollment photos: labels match the pixels, visits follow the plan, seeds repeat, errors.

The video is drawn on a uniform-noise background and written lossless (HuffYUV), so the pixels that changed are
exactly the face's visible pixels, and their bounding box (computed here with plain loops) must equal the label.
"""

import itertools
import json

import cv2
import numpy as np
import pytest

from edgepipe.export.data.faces import identity_splits
from edgepipe.export.data.kiosk import (
    ENROLL_FACE_PX,
    FACE_PX,
    MIN_VIDEO,
    SMALL_PX,
    STAY_S,
    enrollment_images,
    make_kiosk_video,
)
from tests.pixels import loop_bbox, noise, read_frames

SIZE = MIN_VIDEO  # (240, 320): the smallest video, fast
FPS = 4
N_ENROLLED, N_UNKNOWN = 2, 2


def read_video(path, truth_path) -> tuple[list[np.ndarray], list[dict], list[dict]]:
    truth = [json.loads(line) for line in truth_path.read_text().splitlines()]
    visits = json.loads(path.with_suffix(".visits.json").read_text())
    return read_frames(path), truth, visits


@pytest.fixture(scope="module")
def faces() -> tuple[np.ndarray, np.ndarray]:
    test = identity_splits()["test"].faces
    return test[:N_ENROLLED], test[N_ENROLLED : N_ENROLLED + N_UNKNOWN]


@pytest.fixture(scope="module")
def video(tmp_path_factory, faces):
    """One small lossless kiosk video on noise: (background, frames, truth lines, visits)."""
    path = tmp_path_factory.mktemp("kiosk") / "kiosk.mkv"
    bg = noise(0, SIZE)
    truth_path = make_kiosk_video(path, *faces, size=SIZE, fps=FPS, seed=3, background=bg)
    assert truth_path == path.with_suffix(".jsonl")
    return (bg, *read_video(path, truth_path))


def test_every_label_is_the_tight_box_of_the_drawn_pixels(video):
    bg, frames, truth, _ = video
    assert len(frames) == len(truth) and [t["frame"] for t in truth] == list(range(len(frames)))
    for frame, t in zip(frames, truth, strict=True):
        drawn = (frame != bg).any(axis=2)  # (H, W): lossless, so exactly the face's visible pixels
        box = loop_bbox(drawn)
        if t["faces"]:
            assert len(t["faces"]) == 1 and t["faces"][0]["box"] == box  # one visitor at a time, tight box
            x1, y1, x2, y2 = box
            assert drawn[y1:y2, x1:x2].mean() > 0.6  # the box holds the face, not background (an ellipse: pi/4)
        else:  # nothing drawn, or a face cut by the left or right edge (walking in or out)
            assert box is None or box[0] == 0 or box[2] == SIZE[1]


def test_visits_follow_the_plan(video):
    _, _, truth, visits = video
    assert sorted(v["identity"] for v in visits if not v["small"]) == [0, 0, 1, 1, 2, 3]  # enrolled twice, unknown once
    assert [v["small"] for v in visits].count(True) == 1
    small = next(v for v in visits if v["small"])
    assert small["enrolled"] and small["identity"] < N_ENROLLED  # the far-away visitor is an enrolled one
    for a, b in itertools.pairwise(visits):
        assert a["end"] + 1 < b["start"]  # in time order, never overlapping, an empty frame between
    for v in visits:
        assert v["enrolled"] == (v["identity"] < N_ENROLLED)
        assert v["end"] - v["start"] + 1 >= STAY_S[0] * FPS  # at least the stay near the center is labeled
        for t in truth[v["start"] : v["end"] + 1]:
            (face,) = t["faces"]  # every frame of a visit shows its visitor
            assert (face["identity"], face["enrolled"]) == (v["identity"], v["enrolled"])
    in_visits = {i for v in visits for i in range(v["start"], v["end"] + 1)}
    assert {t["frame"] for t in truth if t["faces"]} == in_visits
    assert not truth[0]["faces"] and not truth[-1]["faces"]  # the clip starts and ends empty


def test_face_sizes_and_the_stay_near_the_center(video):
    _, _, truth, visits = video
    for v in visits:
        boxes = np.array([t["faces"][0]["box"] for t in truth[v["start"] : v["end"] + 1]])  # (T, 4)
        sides = boxes[:, 3] - boxes[:, 1]  # the height: never cut (faces are cut only by the left and right edge)
        low, high = (SMALL_PX[0], 49) if v["small"] else FACE_PX
        assert low <= sides.min() and sides.max() <= high
        centers = (boxes[:, 0] + boxes[:, 2]) / 2
        assert np.abs(centers - SIZE[1] / 2).min() < 0.15 * SIZE[1]  # passes near the center
        still = np.abs(np.diff(centers)) <= 8  # swaying a few pixels while standing
        assert still.sum() >= STAY_S[0] * FPS - 1


def test_same_seed_same_video_other_seed_other_video(tmp_path, faces, video):
    _, frames, truth, visits = video
    again = tmp_path / "again.mkv"
    frames2, truth2, visits2 = read_video(again, make_kiosk_video(again, *faces, size=SIZE, fps=FPS, seed=3,
                                                                  background=noise(0, SIZE)))
    assert truth2 == truth and visits2 == visits
    assert len(frames2) == len(frames) and all(np.array_equal(a, b) for a, b in zip(frames, frames2, strict=True))
    other = tmp_path / "other.mkv"
    _, truth3, visits3 = read_video(other, make_kiosk_video(other, *faces, size=SIZE, fps=FPS, seed=4,
                                                            background=noise(0, SIZE)))
    assert visits3 != visits and truth3 != truth


def test_no_unknown_faces_and_a_random_background(tmp_path, faces):
    path = tmp_path / "k.avi"
    truth_path = make_kiosk_video(path, faces[0][:1], np.zeros((0, 25, 25), np.uint8), size=SIZE, fps=2, seed=0)
    visits = json.loads(path.with_suffix(".visits.json").read_text())
    assert [(v["identity"], v["small"]) for v in sorted(visits, key=lambda v: v["small"])] == [
        (0, False), (0, False), (0, True)]
    frames = read_frames(path)
    assert len(frames) == len(truth_path.read_text().splitlines()) and frames[0].shape == (*SIZE, 3)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"path": "k.mov"}, ValueError, r"\.mp4.*'k\.mov'"),  # no codec for .mov
        ({"enrolled": np.zeros((0, 25, 25), np.uint8)}, ValueError, "enrolled must be .*K >= 1"),  # nobody enrolled
        ({"enrolled": np.zeros((2, 25, 25), np.float32)}, ValueError, "enrolled must be .*float32"),  # float faces
        ({"enrolled": np.zeros((25, 25), np.uint8)}, ValueError, r"enrolled.*shape \(25, 25\)"),  # one face, 2-D
        ({"unknown": np.zeros((2, 25, 25, 3), np.uint8)}, ValueError, "unknown must be"),  # color faces
        ({"size": (200, 320)}, ValueError, r"at least \(240, 320\)"),  # too small for 200 px faces
        ({"size": (240,)}, ValueError, "size must be"),  # not (height, width)
        ({"fps": 0}, ValueError, "fps must be"),  # no frames per second
        ({"fps": 2.5}, ValueError, "fps must be"),  # not an integer
        ({"background": noise(0, (240, 330))}, ValueError, r"background must be \(240, 320, 3\)"),  # wrong size
    ],
)
def test_make_kiosk_video_errors(tmp_path, faces, kwargs, error, match):
    args = {"path": "k.mkv", "enrolled": faces[0], "unknown": faces[1], "size": SIZE, "fps": FPS, **kwargs}
    args["path"] = tmp_path / args["path"]
    with pytest.raises(error, match=match):
        make_kiosk_video(**args)
    assert not args["path"].exists()  # nothing written


def test_enrollment_images_one_face_on_a_plain_background(faces):
    plain = np.full((480, 640, 3), (200, 190, 180), np.uint8)
    photos = enrollment_images(faces[0], 3, seed=1, background=plain)
    assert len(photos) == 3 * N_ENROLLED
    for p in photos:
        assert p.shape == (480, 640, 3) and p.dtype == np.uint8
        wall = p[0, 0]
        for corner in (p[:16, :16], p[:16, -16:], p[-16:, :16], p[-16:, -16:]):
            assert (corner == wall).all()  # a plain background
        face = (p != wall).any(axis=2)
        x1, y1, x2, y2 = loop_bbox(face)
        low, high = ENROLL_FACE_PX
        assert low <= x2 - x1 <= high and low <= y2 - y1 <= high  # one face, near the center
        assert abs((x1 + x2) / 2 - 320) <= 12 and abs((y1 + y2) / 2 - 240) <= 12
    again = enrollment_images(faces[0], 3, seed=1, background=plain)
    assert all(np.array_equal(a, b) for a, b in zip(photos, again, strict=True))
    assert not np.array_equal(photos[0], enrollment_images(faces[0], 3, seed=2)[0])
    assert enrollment_images(np.zeros((0, 25, 25), np.uint8), 2) == []


def test_each_drawn_face_is_its_identity(tmp_path):
    # Two made-up identities told apart by brightness: a dark crop (enrolled, identity 0) and a bright one
    # (unknown, identity 1). Gamma, gain and tint keep the dark one under 100 and the bright one over 100.
    dark, bright = np.full((1, 25, 25), 30, np.uint8), np.full((1, 25, 25), 220, np.uint8)
    path, bg = tmp_path / "two.mkv", noise(5, SIZE)
    frames, truth, _ = read_video(path, make_kiosk_video(path, dark, bright, size=SIZE, fps=2, seed=1, background=bg))
    seen = set()
    for frame, t in zip(frames, truth, strict=True):
        for face in t["faces"]:
            drawn = (frame != bg).any(axis=2)  # (H, W)
            level = np.median(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)[drawn])
            assert (level < 100) == (face["identity"] == 0), (t["frame"], level)
            seen.add(face["identity"])
    assert seen == {0, 1}
    photos = enrollment_images(np.concatenate([dark, bright]), 3, seed=0,
                               background=np.full((480, 640, 3), (200, 190, 180), np.uint8))
    levels = [np.median(cv2.cvtColor(p, cv2.COLOR_BGR2GRAY)[(p != p[0, 0]).any(axis=2)]) for p in photos]
    assert [lv < 100 for lv in levels] == [True] * 3 + [False] * 3  # identity-major


@pytest.mark.parametrize(
    ("faces_arg", "n", "match"),
    [
        (np.zeros((2, 25, 25), np.uint8), 0, "n must be"),  # no photos
        (np.zeros((2, 25, 25), np.uint8), 1.5, "n must be"),  # not an integer
        (np.zeros((25, 25), np.uint8), 2, r"faces must be .*shape \(25, 25\)"),  # one face, 2-D
        (np.zeros((2, 25, 25), np.float64), 2, "faces must be .*float64"),  # float faces
    ],
)
def test_enrollment_images_errors(faces_arg, n, match):
    with pytest.raises(ValueError, match=match):
        enrollment_images(faces_arg, n)
