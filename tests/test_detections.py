"""The Detections dataclass: validation, selection, concatenation and JSON conversion."""

import json

import numpy as np
import pytest

from edgepipe.postprocess.detections import Detections


def make(n: int, seed: int = 0, names=("a", "b", "c")) -> Detections:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 100, (n, 2))
    return Detections(
        np.concatenate([xy, xy + rng.uniform(1, 50, (n, 2))], 1), rng.uniform(0, 1, n), rng.integers(0, 3, n), names
    )


def test_types_are_normalized():
    d = Detections(np.array([[0, 0, 10, 10]]), np.array([0.5]), np.array([1], dtype=np.int32))
    assert d.xyxy.dtype == np.float32
    assert d.scores.dtype == np.float32
    assert d.class_ids.dtype == np.int64


def test_empty():
    d = Detections.empty(("a",))
    assert len(d) == 0
    assert d.xyxy.shape == (0, 4)
    assert d.to_dicts() == []
    assert len(d.filter(min_score=0.5)) == 0


def test_filter_matches_loop():
    d = make(200)
    got = d.filter(min_score=0.3, classes=[0, 2], min_area=100)
    keep = [
        i for i in range(len(d))
        if d.scores[i] >= 0.3 and d.class_ids[i] in (0, 2)
        and (d.xyxy[i, 2] - d.xyxy[i, 0]) * (d.xyxy[i, 3] - d.xyxy[i, 1]) >= 100
    ]
    np.testing.assert_array_equal(got.xyxy, d.xyxy[keep])
    np.testing.assert_array_equal(got.class_ids, d.class_ids[keep])


def test_indexing_keeps_one_row_and_names():
    d = make(5)
    one = d[2]
    assert len(one) == 1
    assert one.class_names == d.class_names
    np.testing.assert_array_equal(one.xyxy[0], d.xyxy[2])


def test_concatenate():
    a, b = make(3, 1), make(4, 2)
    c = Detections.concatenate([a, b])
    assert len(c) == 7
    np.testing.assert_array_equal(c.scores, np.concatenate([a.scores, b.scores]))
    assert len(Detections.concatenate([])) == 0
    with pytest.raises(ValueError, match="class_names must agree"):
        Detections.concatenate([a, make(2, names=("x", "y", "z"))])


def test_to_dicts_is_json_ready():
    d = Detections(np.array([[1.234, 2, 3, 4]]), np.array([0.91234]), np.array([2]), ("a", "b", "car"))
    out = json.loads(json.dumps(d.to_dicts()))
    assert out == [{"xyxy": [1.23, 2.0, 3.0, 4.0], "score": 0.9123, "class_id": 2, "class_name": "car"}]
    no_names = Detections(np.array([[1, 2, 3, 4]]), np.array([0.5]), np.array([7]))
    assert no_names.to_dicts()[0]["class_name"] == "7"


def test_to_dicts_matches_a_row_by_row_reference():
    """Whole columns rounded at once give, row by row, what Python's round gives each number (it may differ only on a
    number exactly halfway, which a float32 box coordinate times 100 practically never is)."""
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 600, (300, 2)).astype(np.float32)
    kp = rng.uniform(0, 600, (300, 5, 2)).astype(np.float32)
    d = Detections(np.concatenate([xy, xy + 30], 1), rng.uniform(0, 1, 300), rng.integers(0, 3, 300), ("a", "b", "c"),
                   keypoints=kp, keypoint_scores=rng.uniform(0, 1, (300, 5))).with_track_ids(np.arange(300) + 7)
    want = [{"xyxy": [round(float(v), 2) for v in d.xyxy[i]], "score": round(float(d.scores[i]), 4),
             "class_id": int(d.class_ids[i]), "class_name": "abc"[d.class_ids[i]],
             "keypoints": [[round(float(v), 2) for v in p] for p in d.keypoints[i]],
             "keypoint_scores": [round(float(v), 4) for v in d.keypoint_scores[i]], "track_id": i + 7}
            for i in range(300)]
    assert d.to_dicts() == want
    assert json.loads(json.dumps(d.to_dicts())) == want


def test_keypoints():
    kp = np.zeros((1, 5, 2))
    d = Detections(np.array([[1, 2, 3, 4]]), np.array([0.5]), np.array([0]), keypoints=kp)
    assert d.keypoints.shape == (1, 5, 2)
    assert len(d.to_dicts()[0]["keypoints"]) == 5


def test_track_ids_follow_selection_concatenation_and_json():
    d = make(6).with_track_ids(np.array([10, 11, 12, 13, 14, 15]))
    assert d.track_ids.dtype == np.int64 and make(6).track_ids is None
    mask = d.scores >= np.median(d.scores)
    picked = d[mask]  # each id stays with its box: compared with the boxes selected by the same mask
    assert picked.track_ids.tolist() == [10 + i for i in np.flatnonzero(mask)]
    assert np.array_equal(picked.xyxy, d.xyxy[mask])
    assert d[3].track_ids.tolist() == [13] and d.filter(classes=[]).track_ids.shape == (0,)
    joined = Detections.concatenate([d[:2], d[4:]])
    assert joined.track_ids.tolist() == [10, 11, 14, 15]
    assert [r["track_id"] for r in json.loads(json.dumps(d.to_dicts()))] == list(range(10, 16))
    assert "track_id" not in make(2).to_dicts()[0]
    with pytest.raises(ValueError, match="track_ids must be present in all parts or in none"):
        Detections.concatenate([d[:2], make(2)])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # boxes without the (N, 4) shape
        ({"xyxy": np.zeros(4)}, r"xyxy must be a 2D array with shape \(N, 4\), but got shape \(4,\)"),
        # one score for two boxes
        ({"scores": np.array([0.1])}, r"scores must have shape \(2,\) to match the boxes, but got shape \(1,\)"),
        # float class ids
        ({"class_ids": np.array([0.0, 1.0])}, r"class_ids must be an integer array, but got dtype float64"),
        # negative class id
        ({"class_ids": np.array([0, -1])}, r"class_ids must be >= 0, but got -1"),
        # NaN score
        ({"scores": np.array([0.1, np.nan])}, r"scores must be finite"),
        # class id beyond the names
        ({"class_names": ("a",)}, r"class_ids must be < len\(class_names\) = 1, but got 1"),
        # keypoints for the wrong number of boxes
        ({"keypoints": np.zeros((1, 5, 2))}, r"keypoints must have shape \(2, K, 2\), but got shape \(1, 5, 2\)"),
        # x2 < x1
        ({"xyxy": np.array([[5, 0, 1, 1], [0, 0, 1, 1.0]])}, r"x1 <= x2"),
        # one track id for two boxes
        ({"track_ids": np.array([3])}, r"track_ids must have shape \(2,\) to match the boxes, but got shape \(1,\)"),
        # a negative track id
        ({"track_ids": np.array([3, -1])}, r"track_ids must be >= 0, but got -1"),
    ],
)
def test_bad_input(kwargs, message):
    args = {"xyxy": np.array([[0, 0, 1, 1], [0, 0, 2, 2.0]]), "scores": np.array([0.1, 0.2]),
            "class_ids": np.array([0, 1])} | kwargs
    with pytest.raises(ValueError, match=message):
        Detections(**args)
