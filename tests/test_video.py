"""runtime.video: the codec table by suffix and the checked writer (frames read back; .mkv exactly)."""

import numpy as np
import pytest

from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.video import VIDEO_CODECS, open_video_writer, video_codec
from tests.pixels import read_frames

SIZE = (48, 64)  # (height, width)


def frames(n: int = 5) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8) for _ in range(n)]


def write_and_read(path, images) -> list[np.ndarray]:
    writer = open_video_writer(path, 10, SIZE)
    try:
        for image in images:
            writer.write(image)
    finally:
        writer.release()
    return read_frames(path)


@pytest.mark.parametrize("suffix", sorted(VIDEO_CODECS))
def test_every_suffix_writes_a_readable_video_of_the_frames(tmp_path, suffix):
    images = frames()
    got = write_and_read(tmp_path / "sub" / f"v{suffix}", images)  # the folder is created
    assert len(got) == len(images) and all(g.shape == (*SIZE, 3) for g in got)
    if suffix == ".mkv":  # HuffYUV: lossless
        assert all(np.array_equal(g, i) for g, i in zip(got, images, strict=True))


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        ("a.mp4", "mp4v"),
        ("a.MKV", "HFYU"),  # any case
        ("dir.avi/a.avi", "MJPG"),  # only the file's own suffix counts
    ],
)
def test_video_codec_by_suffix(name, codec):
    assert video_codec(name) == codec


@pytest.mark.parametrize(
    ("name", "fps", "size", "message"),
    [
        ("a.mov", 10, SIZE, r"--save must end in one of \.mp4, \.avi, \.mkv, but got 'a.mov'"),  # unknown container
        ("a", 10, SIZE, "--save must end in one of"),  # no suffix
        ("a.mp4", 0, SIZE, "fps must be > 0, but got 0"),
        ("a.mp4", 10, (48,), r"size must be \(height, width\)"),  # one number
        ("a.mp4", 10, (48, 0), r"size must be \(height, width\)"),  # empty frames
        ("a.mp4", 10, (48.5, 64), r"size must be \(height, width\)"),  # not whole pixels
    ],
)
def test_bad_arguments_raise_and_write_nothing(tmp_path, name, fps, size, message):
    with pytest.raises(UserError, match=message):
        open_video_writer(tmp_path / name, fps, size, what="--save")
    assert not list(tmp_path.iterdir())


def test_a_writer_that_does_not_open_is_an_error(tmp_path):
    (tmp_path / "taken.mp4").mkdir()  # a folder where the file should go
    with pytest.raises(UserError, match=r"cannot write video .*taken.mp4 \(codec mp4v\)"):
        open_video_writer(tmp_path / "taken.mp4", 10, SIZE)
