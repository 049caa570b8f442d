"""`edgepipe face calibrate` in-process from a dataset and from pairs against a brute-force reference, its refusals,
and the ROC image drawn by OpenCV."""

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepipe.apps.face.gallery import FaceDB
from edgepipe.apps.face.roc import CURVE, RocPlot, save_roc
from edgepipe.postprocess.calibration import calibrate, roc_curve
from edgepipe.postprocess.errors import UserError
from tests.face_commands import NAMES, embed, face, face_json, models


def test_calibrate_from_a_dataset_matches_a_reference(tmp_path, capsys, photos, analyzer):
    """Each person's folder: their photos and two copies of the first (same-person distance 0 for any encoder)."""
    gallery, dataset, roc = tmp_path / "faces.db", tmp_path / "people", tmp_path / "roc.png"
    files: list[tuple[str, Path]] = []
    for name in NAMES:
        (dataset / name).mkdir(parents=True)
        sources = [*photos[name], photos[name][0], photos[name][0]]
        for i, src in enumerate(sources):
            files.append((name, dataset / name / f"{i}.png"))
            shutil.copy(src, files[-1][1])
    report = face_json(capsys, "calibrate", "--dataset", dataset, "--far", "0.05", "--roc", roc, *models(gallery))

    e = {path: embed(analyzer, path).astype(np.float64) for _, path in files}
    pairs = [(na == nb, float(((e[a] - e[b]) ** 2).sum())) for i, (na, a) in enumerate(files)
             for nb, b in files[i + 1:]]
    genuine = np.array([d for same, d in pairs if same])
    impostor = np.array([d for same, d in pairs if not same])
    # Brute force: the largest distance whose FAR <= 0.05 (there is one: the copies' genuine distance 0).
    threshold = max(t for t in np.concatenate([genuine, impostor]) if np.mean(impostor <= t) <= 0.05)
    assert (report["genuine_pairs"], report["impostor_pairs"]) == (len(genuine), len(impostor))
    cal = report["calibration"]
    assert cal["threshold"] == pytest.approx(threshold, abs=1e-6)
    assert cal["far"] == pytest.approx(np.mean(impostor <= threshold), abs=1e-9)
    assert cal["tar"] == pytest.approx(np.mean(genuine <= threshold), abs=1e-9)
    assert cv2.imread(str(roc)).shape == (480, 640, 3)
    with FaceDB.open(gallery, create=False) as db:
        stored = db.decision_threshold
    assert (stored.value, stored.far, stored.eer) == (cal["threshold"], cal["far"], cal["eer"])

    assert face_json(capsys, "list", "--gallery", gallery)["people"] == []  # calibrating enrolls nobody
    face_json(capsys, "enroll", "--name", "Alice", "--images", photos["Alice"][0], *models(gallery))
    verdict = face_json(capsys, "verify", "--name", "Alice", "--image", photos["Alice"][0], *models(gallery))
    assert verdict["threshold"] == cal["threshold"] and verdict["threshold_from"] == f"gallery {gallery}"


def test_calibrate_refuses_too_few_people_or_pairs_and_bad_lines(tmp_path, capsys, photos):
    gallery = tmp_path / "faces.db"
    (tmp_path / "people" / "Alice").mkdir(parents=True)
    shutil.copy(photos["Alice"][0], tmp_path / "people" / "Alice" / "0.png")
    shutil.copy(photos["Alice"][1], tmp_path / "people" / "Alice" / "1.png")
    code, _, err = face(capsys, "calibrate", "--dataset", tmp_path / "people", *models(gallery))
    assert code == 2 and "at least 2 sub-folders" in err
    pairs = tmp_path / "pairs.txt"
    a, b = photos["Alice"][:2]
    pairs.write_text(f"# two pairs only\n{a} {b} same\n{a} {photos['Bob'][0]} different\n")
    code, _, err = face(capsys, "calibrate", "--pairs", pairs, *models(gallery))
    assert code == 2 and "at least 10 same-person and 10 different-person pairs, but got 1 and 1" in err
    pairs.write_text(f"{a} {b} similar\n")
    code, _, err = face(capsys, "calibrate", "--pairs", pairs, *models(gallery))
    assert code == 2 and f"{pairs}:1: expected 'IMAGE_A IMAGE_B same|different'" in err


def test_calibrate_from_pairs_relative_to_the_file(tmp_path, capsys, photos):
    gallery = tmp_path / "faces.db"
    for name in NAMES:
        shutil.copy(photos[name][0], tmp_path / f"{name}.png")
    same = [f"{n}.png {n}.png same" for n in NAMES] * 2  # 10 pairs at distance 0
    different = [f"'{a}.png' {b}.png different" for i, a in enumerate(NAMES) for b in NAMES[i + 1:]]  # 10 pairs
    (tmp_path / "pairs.txt").write_text("\n".join(same + different) + "\n")
    report = face_json(capsys, "calibrate", "--pairs", tmp_path / "pairs.txt", *models(gallery))
    # Same-person pairs at 0 and every different-person pair above it: 0 is the largest threshold with FAR 0.
    assert (report["genuine_pairs"], report["impostor_pairs"]) == (10, 10)
    cal = report["calibration"]
    assert (cal["threshold"], cal["far"], cal["tar"], cal["eer"], cal["auc"]) == (0, 0, 1, 0, 1)


def curve_near(image: np.ndarray, xy: tuple[int, int], radius: int = 2) -> bool:
    """Whether a pixel within radius of xy has the curve's color (up to antialiasing)."""
    x, y = xy
    patch = image[y - radius : y + radius + 1, x - radius : x + radius + 1].astype(int)  # (5, 5, 3)
    return bool((np.abs(patch - np.array(CURVE)).sum(axis=2) < 60).any())


@pytest.mark.parametrize(
    "genuine, impostor, on_curve, off_curve",
    [
        # perfectly separated: up the left edge to (0, 1), then along the top
        ([0.1, 0.2, 0.3], [0.5, 0.6, 0.7], [(0, 0.5), (0.5, 1)], [(0.5, 0.3), (0.7, 0.5)]),
        # impostors always closer: along the bottom to (1, 0), then up the right edge
        ([0.5, 0.6, 0.7], [0.1, 0.2, 0.3], [(0.5, 0), (1, 0.5)], [(0.3, 0.5), (0.5, 0.7)]),
    ],
)
def test_roc_plot_draws_the_curve_where_the_rates_are(tmp_path, genuine, impostor, on_curve, off_curve):
    roc, cal = roc_curve(np.array(genuine), np.array(impostor)), calibrate(np.array(genuine), np.array(impostor), 0.1)
    plot = RocPlot()
    image = cv2.imread(str(save_roc(tmp_path / "roc.png", roc, cal, plot)))
    assert image.shape == (480, 640, 3)
    assert all(curve_near(image, plot.point(*p)) for p in on_curve)
    assert not any(curve_near(image, plot.point(*p)) for p in off_curve)


def test_save_roc_refuses_a_path_it_cannot_write(tmp_path):
    roc, cal = roc_curve(np.array([0.1]), np.array([0.5])), calibrate(np.array([0.1]), np.array([0.5]), 0.1)
    with pytest.raises(ValueError, match=r"must be a \.png file"):
        save_roc(tmp_path / "roc.jpg", roc, cal)
    with pytest.raises(UserError, match="does not exist"):
        save_roc(tmp_path / "missing" / "roc.png", roc, cal)
