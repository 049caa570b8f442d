"""IouTracker against the generated video's object identities: one track per object, through misses, class flips
and duplicate boxes."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from edgepipe.apps.detect.truth import read_jsonl
from edgepipe.export.data.detection import make_video
from edgepipe.postprocess.detections import Detections
from edgepipe.postprocess.track import IouTracker


@pytest.fixture(scope="module")
def truths(tmp_path_factory) -> list[list[dict]]:
    """Ground truth of three generated 200-frame videos: per frame boxes, class ids and object ids."""
    folder = tmp_path_factory.mktemp("track")
    return [read_jsonl(make_video(folder / f"v{seed}.mp4", n_frames=200, seed=seed)) for seed in (0, 4, 7)]


def frames(truth: list[dict], rng: np.random.Generator, drop: float = 0.0, flip: float = 0.0, dup: float = 0.0):
    """The truth as detections: each box dropped with probability drop, its class changed with probability flip,
    and with probability dup a second, lower-scored box of another class 3 px away. Yields (Detections, object
    id of each detection)."""
    for record in truth:
        boxes, classes, objects, scores = [], [], [], []
        for box, c, obj in zip(record["boxes"], record["class_ids"], record["ids"], strict=True):
            if rng.random() < drop:
                continue
            c = (c + 1) % 3 if rng.random() < flip else c
            boxes.append(box), classes.append(c), objects.append(obj), scores.append(0.9)
            if rng.random() < dup:
                boxes.append([v + 3 for v in box]), classes.append((c + 2) % 3), objects.append(obj)
                scores.append(0.5)
        order = np.argsort(-np.array(scores), kind="stable")
        det = Detections(np.array(boxes, np.float32).reshape(-1, 4)[order], np.array(scores, np.float32)[order],
                         np.array(classes, np.int64)[order], ("circle", "square", "triangle"))
        yield det, np.array(objects, np.int64)[order]


def assert_one_track_per_object(tracker: IouTracker, truth: list[dict], **noise: float) -> None:
    tracks_of, objects_of = defaultdict(set), defaultdict(set)
    for det, objects in frames(truth, np.random.default_rng(0), **noise):
        ids = tracker.update(det)
        assert ids.shape == (len(det),) and ids.dtype == np.int64
        for track, obj in zip(ids.tolist(), objects.tolist(), strict=True):
            tracks_of[obj].add(track)
            objects_of[track].add(obj)
    assert all(len(t) == 1 for t in tracks_of.values()), dict(tracks_of)
    assert all(len(o) == 1 for o in objects_of.values()), dict(objects_of)
    assert len(tracks_of) >= 2


NOISE = [{}, {"drop": 0.3}, {"flip": 0.2}, {"dup": 0.3}, {"drop": 0.2, "flip": 0.1, "dup": 0.2}]


@pytest.mark.parametrize("video", range(3))
@pytest.mark.parametrize("noise", NOISE)
def test_one_track_per_generated_object(truths, video, noise):
    assert_one_track_per_object(IouTracker(), truths[video], **noise)


def test_track_class_is_the_most_frequent(truths):
    """With a fifth of the classes flipped, each track seen at least 30 times reports its object's true class."""
    true_class = {o: c for r in truths[0] for o, c in zip(r["ids"], r["class_ids"], strict=True)}
    tracker, seen, checked = IouTracker(), defaultdict(int), 0
    for det, objects in frames(truths[0], np.random.default_rng(1), flip=0.2):
        ids = tracker.update(det)
        for track, obj, cls in zip(ids.tolist(), objects.tolist(), tracker.classes(ids).tolist(), strict=True):
            seen[track] += 1
            if seen[track] >= 30:
                assert cls == true_class[obj]
                checked += 1
    assert checked > 100


def test_class_aware_association_splits_on_a_flip():
    box = np.array([[100, 100, 200, 200]], np.float32)
    tracker = IouTracker(class_aware=True)
    a = tracker.update(Detections(box, np.ones(1, np.float32), np.array([0])))
    b = tracker.update(Detections(box + 2, np.ones(1, np.float32), np.array([1])))
    assert a[0] != b[0]
    agnostic = IouTracker()
    assert agnostic.update(Detections(box, np.ones(1, np.float32), np.array([0])))[0] == agnostic.update(
        Detections(box + 2, np.ones(1, np.float32), np.array([1])))[0]


def test_max_age_and_motion():
    """An object moving 20 px a frame is followed through 5 missing frames by its motion (IoU with its last box
    would be 0 by then); unseen for more than max_age frames, it comes back under a new id."""
    tracker = IouTracker(max_age=5)
    box = np.array([[0, 0, 60, 60]], np.float32)
    one = lambda x: Detections(box + np.array([x, 0, x, 0], np.float32), np.ones(1, np.float32),  # noqa: E731
                               np.array([0]))
    empty = Detections.empty()
    first = [tracker.update(one(20 * i))[0] for i in range(3)]
    for _ in range(5):
        assert tracker.update(empty).shape == (0,)
    assert tracker.update(one(20 * 8))[0] == first[0] == first[2]
    for _ in range(6):
        tracker.update(empty)
    assert tracker.update(one(20 * 15))[0] == first[0] + 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"iou": 1.5}, "iou must be in"), ({"max_age": -1}, "max_age must be an int >= 0"),
    ({"max_age": 2.5}, "max_age must be an int"), ({"duplicate_iou": -0.1}, "duplicate_iou must be in"),
])
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        IouTracker(**kwargs)
