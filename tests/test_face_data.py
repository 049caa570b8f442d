"""Faces: lfw_subset crops, fixed identity splits, augmented views, pasted faces whose boxes match their pixels."""

import cv2
import numpy as np
import pytest
import skimage.data

from edgepipe.export.data.faces import (
    MIN_FACE,
    SPLITS,
    face_crops,
    face_views,
    identity_batch,
    identity_splits,
    kiosk_face_views,
    make_face_scene,
    paste_faces,
)
from edgepipe.export.options import SPLITS as SPLIT_NAMES
from tests.pixels import SEEDS, changed, loop_bbox, noise, union_of_boxes


def test_face_crops_are_the_100_faces_of_lfw_subset():
    crops = face_crops()
    assert crops.shape == (100, 25, 25) and crops.dtype == np.uint8 and not crops.flags.writeable
    np.testing.assert_array_equal(crops, np.round(skimage.data.lfw_subset()[:100] * 255))


def test_identity_splits_are_fixed_disjoint_and_cover_every_face():
    s = identity_splits()
    ids = [set(s[k].ids.tolist()) for k in SPLIT_NAMES]
    assert [len(i) for i in ids] == [SPLITS[k] for k in SPLIT_NAMES] == [60, 20, 20]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])  # no identity in two splits
    assert set.union(*ids) == set(range(100))
    for k in SPLIT_NAMES:
        np.testing.assert_array_equal(s[k].faces, face_crops()[s[k].ids])
        np.testing.assert_array_equal(identity_splits()[k].ids, s[k].ids)


def test_face_views_are_bgr_frames_that_vary_and_repeat_per_seed():
    face = identity_splits()["train"].faces[0]
    views = face_views(face, 6, np.random.default_rng(0), size=48)
    assert views.shape == (6, 48, 48, 3) and views.dtype == np.uint8
    assert (views[..., 0] == views[..., 1]).all() and (views[..., 1] == views[..., 2]).all()  # gray as BGR
    assert len({v.tobytes() for v in views}) == 6  # every view differs
    np.testing.assert_array_equal(views, face_views(face, 6, np.random.default_rng(0), size=48))
    assert face_views(face, 0, np.random.default_rng(0)).shape == (0, 96, 96, 3)  # default size, no views


def test_face_views_resemble_their_own_face_most():
    faces, size = identity_splits()["test"].faces, 32

    def unit(a: np.ndarray) -> np.ndarray:  # rows centered and scaled to unit length: dot = correlation
        a = a.reshape(len(a), -1).astype(np.float64)
        a -= a.mean(axis=1, keepdims=True)
        return a / np.linalg.norm(a, axis=1, keepdims=True)

    ref = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_CUBIC) for f in faces])
    refs = np.concatenate([unit(ref), unit(ref[:, :, ::-1])])  # each face and its mirror image
    rng, hits = np.random.default_rng(0), 0
    for i, face in enumerate(faces):
        best = (unit(face_views(face, 5, rng, size)[..., 0]) @ refs.T).argmax(axis=1) % len(faces)
        hits += int((best == i).sum())
    assert hits / (5 * len(faces)) >= 0.8  # chance is 1 / 20


def test_identity_batch_is_p_identities_times_k_views():
    faces = identity_splits()["train"].faces
    views, labels = identity_batch(np.random.default_rng(0), faces, p=4, k=3, size=32)
    assert views.shape == (12, 32, 32, 3) and labels.dtype == np.int64
    assert len(set(labels.tolist())) == 4 and (np.bincount(labels) <= 3).all()
    np.testing.assert_array_equal(labels, np.repeat(labels[::3], 3))  # k consecutive views per identity


@pytest.mark.parametrize("seed", SEEDS)
def test_pasted_face_boxes_equal_their_pixels(seed):
    bg = noise(seed, (160, 192))
    image, boxes = paste_faces(np.random.default_rng(seed), identity_splits()["dev"].faces, bg, max_faces=3)
    drawn = changed(image, bg)
    assert 1 <= len(boxes) <= 3 and boxes.dtype == np.float32
    assert not (drawn & ~union_of_boxes(boxes, bg.shape[:2])).any()  # every pasted pixel is in a box
    for i, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
        assert x2 - x1 == y2 - y1 and MIN_FACE <= x2 - x1 <= 80  # squares from MIN_FACE to half the short side
        assert loop_bbox(drawn[y1:y2, x1:x2]) == [0, 0, x2 - x1, y2 - y1]  # the oval touches all four sides
        for u1, v1, u2, v2 in boxes[i + 1 :].astype(int):
            assert u2 <= x1 or x2 <= u1 or v2 <= y1 or y2 <= v1  # faces never overlap


def test_make_face_scene_is_deterministic():
    faces = identity_splits()["dev"].faces
    a, b = make_face_scene(np.random.default_rng(4), faces), make_face_scene(np.random.default_rng(4), faces)
    assert a[0].shape == (256, 256, 3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: face_views(np.zeros((25, 25, 3), np.uint8), 1, np.random.default_rng(0)), "face must be"),  # color
        (lambda: face_views(np.zeros((25, 25)), 1, np.random.default_rng(0)), "face must be"),  # float crop
        (lambda: face_views(np.zeros((25, 25), np.uint8), 1, np.random.default_rng(0), size=4), "size >= 8"),
        (lambda: identity_batch(np.random.default_rng(0), face_crops()[:3], p=4, k=2), "p must be in \\[1, 3\\]"),
        (lambda: identity_batch(np.random.default_rng(0), face_crops()[:3], p=2, k=0), "k >= 1"),
        (lambda: paste_faces(np.random.default_rng(0), face_crops(), noise(0, (40, 200))), "sides >= 48"),
        (lambda: paste_faces(np.random.default_rng(0), face_crops()[:0], noise(0)), "len\\(faces\\) must be >= 1"),
    ],
)
def test_face_arguments_are_checked(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_kiosk_face_views_are_tinted_oval_crops_and_deterministic():
    face = np.full((40, 40), 128, np.uint8)
    views = kiosk_face_views(face, 6, np.random.default_rng(0), size=32, p=1.0)
    assert views.shape == (6, 32, 32, 3) and views.dtype == np.uint8
    center = views[:, 12:20, 12:20].reshape(-1, 3).astype(float)  # inside the oval: the tinted face
    assert center[:, 0].mean() < center[:, 2].mean()  # skin tint: less blue than red (a gray face has B == R)
    again = kiosk_face_views(face, 6, np.random.default_rng(0), size=32, p=1.0)
    assert np.array_equal(views, again)
    plain = kiosk_face_views(face, 4, np.random.default_rng(1), size=32, p=0.0)
    assert (plain[..., 0] == plain[..., 2]).all()  # p = 0: plain gray face_views
    with pytest.raises(ValueError, match="p must be a probability"):
        kiosk_face_views(face, 1, np.random.default_rng(0), p=1.5)
