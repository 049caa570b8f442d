"""The shapes test video: its ground truth matches the pixels of the lossless frames, it repeats per seed, errors."""

import json

import numpy as np
import pytest

from edgepipe.export.data.detection import CLASS_NAMES, make_video
from tests.pixels import changed, loop_bbox, noise, read_frames, union_of_boxes


def read_truth(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("seed", range(4))
def test_video_truth_labels_one_object_exactly_while_half_visible(tmp_path, seed):
    bg = noise(seed, (200, 320))
    truth_path = make_video(tmp_path / "one.mkv", n_frames=90, size=(200, 320), seed=seed, n_objects=1, background=bg)
    frames, truth = read_frames(tmp_path / "one.mkv"), read_truth(truth_path)
    assert len(frames) == len(truth) == 90 and [t["frame"] for t in truth] == list(range(90))
    drawn = [changed(f, bg) for f in frames]  # HuffYUV is lossless: exactly the object's visible pixels
    whole = [int(d.sum()) for d, b in zip(drawn, map(loop_bbox, drawn), strict=True) if b and b[0] > 0 and b[2] < 320]
    for d, t in zip(drawn, truth, strict=True):
        box = loop_bbox(d)
        if t["boxes"]:
            assert t["boxes"] == [box] and len(t["class_ids"]) == 1
        if whole:  # the object was fully in view at some frame: its full pixel count is known
            assert bool(t["boxes"]) == (int(d.sum()) >= 0.5 * whole[0])  # labeled while at least half in view


def test_video_objects_enter_and_leave_and_every_labeled_box_is_tight(tmp_path):
    bg = noise(7, (400, 320))
    truth_path = make_video(tmp_path / "many.mkv", n_frames=80, size=(400, 320), seed=3, n_objects=10, background=bg)
    frames, truth = read_frames(tmp_path / "many.mkv"), read_truth(truth_path)
    counts = [len(t["boxes"]) for t in truth]
    assert max(counts) >= 2 and len(set(counts)) >= 2  # the number of objects in view changes over time
    inside = total = 0
    for frame, t in zip(frames, truth, strict=True):
        drawn = changed(frame, bg)
        assert set(t["class_ids"]) <= set(range(len(CLASS_NAMES))) and len(t["class_ids"]) == len(t["boxes"])
        for x1, y1, x2, y2 in t["boxes"]:
            assert 0 <= x1 < x2 <= 320 and 0 <= y1 < y2 <= 400
            assert drawn[y1, x1:x2].any() and drawn[y2 - 1, x1:x2].any()
            assert drawn[y1:y2, x1].any() and drawn[y1:y2, x2 - 1].any()
        # Unlabeled drawn pixels belong to objects less than half in view (cut by the frame edge).
        inside += int((drawn & union_of_boxes(np.array(t["boxes"]).reshape(-1, 4), (400, 320))).sum())
        total += int(drawn.sum())
    assert inside >= 0.8 * total


def test_mp4_video_is_readable_and_deterministic(tmp_path):
    a = make_video(tmp_path / "a.mp4", n_frames=12, size=(240, 320), seed=5)
    b = make_video(tmp_path / "b.mp4", n_frames=12, size=(240, 320), seed=5)
    frames = read_frames(tmp_path / "a.mp4")
    assert len(frames) == 12 and frames[0].shape == (240, 320, 3)
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": "v.mov"}, "path must end in one of"),  # unsupported container
        ({"n_frames": 0}, "n_frames and fps must be >= 1"),  # no frames
        ({"size": (120, 640)}, "size must be at least"),  # too low for 199 px objects
        ({"background": np.zeros((480, 640), np.uint8)}, "background must be"),  # gray background
        ({"background": np.zeros((240, 320, 3), np.uint8)}, "background must be"),  # background of another size
    ],
)
def test_make_video_arguments_are_checked(tmp_path, kwargs, message):
    kwargs = {"path": "v.mp4", **kwargs}
    kwargs["path"] = tmp_path / kwargs["path"]
    with pytest.raises(ValueError, match=message):
        make_video(n_frames=kwargs.pop("n_frames", 2), **kwargs)


@pytest.mark.parametrize("seed", [0, 1])  # 0: the demo's own
def test_the_demo_video_has_enough_to_show(tmp_path, seed):
    from edgepipe.apps.demo import LINE_X, OBJECTS, DemoOptions
    from edgepipe.apps.detect.truth import truth_crossings

    frames = DemoOptions.frames
    truth = read_truth(make_video(tmp_path / "demo.mp4", n_frames=frames, seed=seed, n_objects=OBJECTS,
                                  crossing=True))
    seen: dict[int, list[tuple[int, list[int]]]] = {}  # object id -> (frame, box) while labeled
    classes: dict[int, int] = {}
    for t in truth:
        for k, box, c in zip(t["ids"], t["boxes"], t["class_ids"], strict=True):
            seen.setdefault(k, []).append((t["frame"], box))
            classes[k] = c
    per_class = [sum(c == k for c in classes.values()) for k in range(len(CLASS_NAMES))]
    assert min(per_class) >= 2, per_class  # several objects of each class
    crossings = truth_crossings(truth, LINE_X)
    assert min(crossings.values()) >= 3, crossings  # several crossings each way
    assert max(len(t["ids"]) for t in truth) >= 3  # several objects in view at once
    for k, track in seen.items():  # each enters after the first frame and leaves before the last, at the edges
        (first, enter), (last, leave) = track[0], track[-1]
        assert first > 0 and last < frames - 1, k
        assert (enter[0] == 0) != (enter[2] == 640) and (leave[0] == 0) != (leave[2] == 640), k  # cut by one edge
        assert (enter[0] == 0) != (leave[0] == 0), k  # in at one side, out at the other
