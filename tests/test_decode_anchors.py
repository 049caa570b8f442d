"""One meaning of "no anchors", an empty (): the decoded heads take it (ModelMeta's default), the course head needs
anchors, so decode(meta.head, ..., anchors=meta.anchors) decodes every head; checked against the loop references."""

import numpy as np
import pytest

from edgepipe.postprocess.decoders import HEAD_OPTIONS, HEADS, decode, decode_course
from edgepipe.postprocess.errors import UserError
from edgepipe.postprocess.nms_output import NMS_HEAD
from edgepipe.runtime.metadata import ModelMeta
from edgepipe.runtime.preprocessing import PreprocessSpec
from tests.decode_refs import (
    GRID_ANCHORS,
    assert_matches,
    letterbox,
    random_v5,
    ref_course,
    ref_select,
    ref_yolov5,
    ref_yolov8,
)

# "No anchors" as ModelMeta holds it, as a list, as an array without rows.
NO_ANCHORS = {"tuple": (), "list": [], "array": np.zeros((0, 2))}
NAMES = ("a", "b", "c")
T1 = [letterbox((48, 64), (64, 64))]


def outputs(head: str, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """A random raw output of two images for head (three classes) and the loop reference's candidates per image.

    Course outputs are (2, A*(5+C), S, S) for GRID_ANCHORS; the others are random_v5 rows, transposed for yolov8.
    """
    if head == "yolo-course":
        raw = rng.normal(0, 1.5, (2, len(GRID_ANCHORS), 8, 4, 4)).astype(np.float32)
        t = letterbox((200, 300), (128, 128))
        return raw.reshape(2, -1, 4, 4), [ref_course(image, GRID_ANCHORS, "grid", t) for image in raw]
    if head == NMS_HEAD:  # the rows a graph with NMS inside gives: what it kept of yolov8 candidates
        _, cands = outputs("yolov8", rng)
        kept = [ref_select(c, 0.1, 0.5) for c in cands]
        rows = [[b, *box, score, c] for b, k in enumerate(kept) for box, score, c in k]
        return np.array(rows, np.float32).reshape(-1, 7), kept
    rows = np.stack([random_v5(rng, 120, 3) for _ in range(2)])  # (2, K, 5+C)
    if head == "yolov5":
        return rows, [ref_yolov5(image) for image in rows]
    v8 = rows[:, :, [0, 1, 2, 3, 5, 6, 7]].transpose(0, 2, 1).copy()  # (2, 4+C, K)
    return v8, [ref_yolov8(image) for image in v8]


def transforms(head: str) -> list:
    size = (128, 128) if head == "yolo-course" else (320, 320)
    return [letterbox((200, 300), size), letterbox((200, 300), size)]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("anchors", NO_ANCHORS.values(), ids=NO_ANCHORS.keys())
@pytest.mark.parametrize("head", ["yolov5", "yolov8"])
def test_decoded_heads_take_no_anchors(head, anchors, seed):
    raw, cands = outputs(head, np.random.default_rng(seed))
    ts = transforms(head)
    for got in (decode(head, raw, ts, 0.1, 0.5, anchors=anchors), HEADS[head](raw, ts, 0.1, 0.5, anchors=anchors)):
        for det, cand, t in zip(got, cands, ts, strict=True):
            assert_matches(det, ref_select(cand, 0.1, 0.5), t)


@pytest.mark.parametrize("head", [h for h in HEADS if h not in HEAD_OPTIONS])
def test_the_models_metadata_decodes_every_head(head):
    # The README's call: the anchors, units and names as the model's metadata holds them, whatever the head (the
    # heads with options of their own, windows and pose, are decoded the same way in test_windows and test_pose).
    meta = ModelMeta("detect", PreprocessSpec((128, 128)), NAMES, head, GRID_ANCHORS if head == "yolo-course" else (),
                     nms={"conf": 0.1, "iou": 0.5, "max_det": 300} if head == NMS_HEAD else {})
    raw, cands = outputs(head, np.random.default_rng(7))
    ts = transforms(head)
    got = decode(meta.head, raw, ts, 0.1, 0.5, class_names=meta.class_names, **meta.decode_options())
    assert meta.anchors == (() if head != "yolo-course" else tuple(GRID_ANCHORS))
    for det, cand, t in zip(got, cands, ts, strict=True):
        assert_matches(det, ref_select(cand, 0.1, 0.5), t)
        assert det.class_names == NAMES


@pytest.mark.parametrize("anchors", NO_ANCHORS.values(), ids=NO_ANCHORS.keys())
def test_the_course_head_refuses_no_anchors(anchors):
    raw = np.zeros((1, 8, 2, 2), np.float32)  # a course output for one anchor, C = 3
    message = r"anchors must be given as an \(A, 2\) array of \(w, h\) with A >= 1, but got none"
    for call in (lambda: decode_course(raw, T1, anchors), lambda: decode("yolo-course", raw, T1, anchors=anchors),
                 lambda: decode_course(raw, T1), lambda: decode("yolo-course", raw, T1)):
        with pytest.raises(UserError, match=message):
            call()


@pytest.mark.parametrize(
    ("head", "anchors", "message"),
    [
        # anchors given to a head that has none, through decode and through the head's own function
        ("yolov5", GRID_ANCHORS, r"anchors belong to the yolo-course head, but got anchors=\[\(1.0, 1.0\), .*'yolov5'"),
        ("yolov8", np.ones((2, 2)), r"but got anchors=\[\[1.0, 1.0\], \[1.0, 1.0\]\] for head 'yolov8'"),
        # None is not a way to say "no anchors": refused by every head
        ("yolov8", None, r"anchors belong to the yolo-course head, but got anchors=None for head 'yolov8'"),
        ("yolo-course", None, r"anchors must be an \(N, 2\) array of \(w, h\) with N >= 1, but got shape \(\)"),
    ],
)
def test_anchors_refused(head, anchors, message):
    raw, _ = outputs(head, np.random.default_rng(0))
    ts = transforms(head)
    with pytest.raises(UserError, match=message):
        decode(head, raw, ts, anchors=anchors)
    with pytest.raises(UserError, match=message):
        HEADS[head](raw, ts, anchors=anchors)
