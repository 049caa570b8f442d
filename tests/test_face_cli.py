"""`edgepipe face` in-process: enroll, verify, identify, list, remove, export, import and calibrate on generated
enrollment photos, every refusal and bad input of issue 7, and the ROC image drawn by OpenCV."""

import json
import shutil
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from edgepipe.apps.cli import main
from edgepipe.apps.detect.pipeline import Detector
from edgepipe.apps.face.gallery import FaceDB
from edgepipe.apps.face.pipeline import Encoder, FaceAnalyzer
from edgepipe.apps.face.roc import CURVE, RocPlot, save_roc
from edgepipe.export.data.faces import identity_splits
from edgepipe.export.data.kiosk import enrollment_images
from edgepipe.postprocess.calibration import calibrate, roc_curve
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime import load

REPO = Path(__file__).resolve().parents[1]
DETECTOR = REPO / "tests" / "assets" / "yolo-face.onnx"
ENCODER = REPO / "tests" / "assets" / "facenet.onnx"
CONF = 0.25  # the test detector is small: a lower score threshold than the command's default
MIN_FACE = 50.0
NAMES = ("Alice", "Bob", "Chen", "Dana", "Emeka")
EXACT = 1e-6  # squared L2 between two embeddings of the same crop: zero up to float rounding


def models(gallery: Path) -> list[str]:
    return ["--gallery", str(gallery), "--detector", str(DETECTOR), "--encoder", str(ENCODER), "--conf", str(CONF),
            "--detector-provider", "cpu", "--encoder-provider", "cpu"]


def face(capsys, *argv: str | Path) -> tuple[int, str, str]:
    """Run `edgepipe face ARGV` in-process. Returns (exit code, stdout, stderr)."""
    code = main(["face", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def face_json(capsys, *argv: str | Path) -> dict:
    code, out, err = face(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    """The pipeline the command builds, used as the reference and to pick photos the test detector finds."""
    detector = Detector(load(DETECTOR, providers="cpu"), CONF)
    return FaceAnalyzer(detector, Encoder(load(ENCODER, providers="cpu")), 0.0, MIN_FACE)


@pytest.fixture(scope="module")
def photos(tmp_path_factory, analyzer) -> dict[str, list[Path]]:
    """Enrollment photos (480 x 640 BGR PNG) of five test-split identities, keeping those with exactly one face of
    at least MIN_FACE px for the test detector; the identity with the most such photos is Alice (>= 2 photos)."""
    folder = tmp_path_factory.mktemp("photos")
    faces = identity_splits()["test"].faces[:10]
    per_identity = 3
    images = enrollment_images(faces, per_identity, seed=7)
    usable: list[list[Path]] = []
    for k in range(len(faces)):
        paths = []
        for j in range(per_identity):
            image = images[k * per_identity + j]
            found = analyzer(image)
            if len(found) == 1 and found.embedded[0]:
                paths.append(folder / f"id{k}_{j}.png")
                cv2.imwrite(str(paths[-1]), image)
        if paths:
            usable.append(paths)
    usable.sort(key=len, reverse=True)
    assert len(usable) >= len(NAMES) and len(usable[0]) >= 2, "the test detector finds too few faces"
    return dict(zip(NAMES, usable, strict=False))


def embed(analyzer: FaceAnalyzer, path: Path) -> np.ndarray:
    """The reference embedding of a photo's one face: (D,) float32."""
    return analyzer(cv2.imread(str(path))).embeddings[0]


def two_faces(photos: dict[str, list[Path]], path: Path) -> Path:
    """A 480 x 640 photo with Alice on the left and Bob on the right (the middle 320 columns of each photo, which
    hold its whole face: faces are at most 200 px and within 10 px of the center)."""
    a, b = (cv2.imread(str(photos[n][0])) for n in ("Alice", "Bob"))
    cv2.imwrite(str(path), np.hstack([a[:, 160:480], b[:, 160:480]]))
    return path


def test_enroll_then_verify_and_identify_the_same_image(tmp_path, capsys, photos, analyzer):
    gallery = tmp_path / "faces.db"
    alice = photos["Alice"]
    enrolled = face_json(capsys, "enroll", "--name", "Alice", "--images", *alice, *models(gallery))
    assert enrolled == {"name": "Alice", "enrolled": [str(p) for p in alice], "refused": [], "total": len(alice)}
    face_json(capsys, "enroll", "--name", "Bob", "--images", photos["Bob"][0], *models(gallery))

    verdict = face_json(capsys, "verify", "--name", "Alice", "--image", alice[0], "--threshold", "0.01",
                        *models(gallery))
    assert verdict["match"] is True and verdict["distance"] < EXACT and verdict["threshold"] == 0.01
    assert verdict["threshold_from"] == "--threshold" and verdict["metric"] == "squared_l2"
    code, out, _ = face(capsys, "verify", "--name", "Bob", "--image", alice[0], "--threshold", "0.0", *models(gallery))
    assert code == 0 and out.startswith("no match:")  # two people's crops are never the same embedding

    found = face_json(capsys, "identify", "--image", photos["Bob"][0], "--threshold", "0.01", *models(gallery))
    assert found["name"] == "Bob" and found["nearest"] == "Bob" and found["distance"] < EXACT

    with FaceDB.open(gallery, create=False) as db:  # both decisions are in the audit log, newest first
        assert [(e.decision, e.name) for e in db.events(2)] == [("identified", "Bob"), ("no match", "Bob")]
        assert db.embeddings_of("Alice").shape == (len(alice), 128)


def test_the_services_give_what_the_commands_print(tmp_path, capsys, photos):
    # The same gallery from Python (apps.face.service) and from the command line: the same people and answers.
    from dataclasses import asdict

    from edgepipe.apps.face import service

    def as_json(result) -> dict:
        return json.loads(json.dumps(asdict(result)))

    from edgepipe.apps.face.service import FaceModels
    from edgepipe.apps.options import ModelOptions

    face_models = FaceModels(ModelOptions(DETECTOR, "cpu"), ModelOptions(ENCODER, "cpu"), conf=CONF, min_face=MIN_FACE)
    by_python, by_command = tmp_path / "python.db", tmp_path / "command.db"
    for name in ("Alice", "Bob"):
        enrolled = service.enroll(name, face_models, by_python, photos[name])
        assert as_json(enrolled) == face_json(capsys, "enroll", "--name", name, "--images", *photos[name],
                                             *models(by_command))
    probe = photos["Bob"][-1]
    found = service.identify_face(probe, face_models, by_python, threshold=0.5)
    assert as_json(found) == face_json(capsys, "identify", "--image", probe, "--threshold", "0.5", *models(by_command))
    listed = as_json(service.list_gallery(by_python))
    expected = face_json(capsys, "list", "--gallery", by_command)
    assert [p["name"] for p in listed["people"]] == [p["name"] for p in expected["people"]] == ["Alice", "Bob"]
    assert listed["encoder"] == expected["encoder"]


def test_one_default_for_each_face_option():
    # --min-face, --conf and --margin mean the same in `face` and `kiosk`: both read FaceModels' defaults.
    from edgepipe.apps.cli import build_parser
    from edgepipe.apps.face.service import FaceModels

    need = ["--detector", "d.onnx", "--encoder", "e.onnx"]
    face_args = build_parser().parse_args(["face", "identify", "--image", "x.png", *need])
    kiosk_args = build_parser().parse_args(["kiosk", *need])
    for option in ("min_face", "conf", "margin"):
        assert getattr(face_args, option) == getattr(kiosk_args, option) == getattr(FaceModels, option)


def test_identify_matches_a_brute_force_reference(tmp_path, capsys, photos, analyzer):
    gallery = tmp_path / "faces.db"
    for name in NAMES[1:]:
        face_json(capsys, "enroll", "--name", name, "--images", *photos[name], *models(gallery))
    query = photos["Alice"][0]  # not enrolled: whoever is nearest
    names = [n for n in NAMES[1:] for _ in photos[n]]
    rows = np.stack([embed(analyzer, p) for n in NAMES[1:] for p in photos[n]]).astype(np.float64)  # (G, D)
    d = ((rows - embed(analyzer, query)) ** 2).sum(axis=1)  # (G,) squared L2
    best = int(np.argmin(d))

    far_off = face_json(capsys, "identify", "--image", query, "--threshold", "4", *models(gallery))
    assert far_off["name"] == names[best] and far_off["distance"] == pytest.approx(d[best], abs=1e-5)
    strict = face_json(capsys, "identify", "--image", query, "--threshold", str(d[best] / 2), *models(gallery))
    assert strict["name"] == "unknown" and strict["nearest"] == names[best]
    with FaceDB.open(gallery, create=False) as db:
        assert (db.events(1)[0].decision, db.events(1)[0].name) == ("unknown", "")


def test_enroll_refuses_bad_images_and_keeps_the_good_one(tmp_path, capsys, photos):
    gallery = tmp_path / "faces.db"
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((480, 640, 3), 128, np.uint8))
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not a PNG at all")
    pair = two_faces(photos, tmp_path / "two.png")
    missing = tmp_path / "missing.png"
    good = photos["Alice"][0]
    code, out, err = face(capsys, "enroll", "--name", "Alice", "--images", blank, good, pair, corrupt, missing,
                          *models(gallery))
    assert code == 2
    refused = [line for line in err.splitlines() if "refused" in line]
    assert len(refused) == 4
    assert f"{blank}: no face found" in refused[0]
    assert f"{pair}: 2 faces found, expected exactly one" in refused[1]
    assert str(corrupt) in refused[2] and "not an image" in refused[2]
    assert str(missing) in refused[3] and "not found" in refused[3]
    assert "enrolled Alice: 1 face(s) added" in out
    with FaceDB.open(gallery, create=False) as db:
        assert [(p.name, p.n_embeddings) for p in db.people()] == [("Alice", 1)]


def test_a_face_below_min_face_is_refused_and_nothing_is_created(tmp_path, capsys, photos):
    gallery = tmp_path / "faces.db"
    code, out, err = face(capsys, "enroll", "--name", "Alice", "--images", photos["Alice"][0], *models(gallery),
                          "--min-face", "1000")
    assert code == 2
    assert f"{photos['Alice'][0]}: the face is" in err and "smaller than --min-face 1000" in err
    assert "nothing enrolled for Alice" in out
    assert not gallery.exists()


def test_verify_and_identify_refuse_a_probe_without_exactly_one_face(tmp_path, capsys, photos):
    gallery = tmp_path / "faces.db"
    face_json(capsys, "enroll", "--name", "Alice", "--images", photos["Alice"][0], *models(gallery))
    pair = two_faces(photos, tmp_path / "two.png")
    code, _, err = face(capsys, "identify", "--image", pair, "--threshold", "1", *models(gallery))
    assert code == 2 and "2 faces found" in err and "Traceback" not in err
    code, _, err = face(capsys, "verify", "--name", "Alice", "--image", tmp_path / "nope.png", "--threshold", "1",
                        *models(gallery))
    assert code == 2 and "nope.png not found" in err
    with FaceDB.open(gallery, create=False) as db:  # no decision was logged for them
        assert [e.decision for e in db.events()] == ["enroll"]


def test_unknown_name_suggests_close_names(tmp_path, capsys, photos):
    gallery = tmp_path / "faces.db"
    face_json(capsys, "enroll", "--name", "Alice", "--images", photos["Alice"][0], *models(gallery))
    code, _, err = face(capsys, "verify", "--name", "Alise", "--image", photos["Alice"][0], "--threshold", "1",
                        *models(gallery))
    assert code == 2 and "no person named 'Alise'" in err and "close names: 'Alice'" in err
    code, _, err = face(capsys, "remove", "Alicia", "--gallery", gallery)
    assert code == 2 and "close names: 'Alice'" in err


def test_threshold_comes_from_the_encoder_metadata_or_is_refused(tmp_path, capsys, photos):
    gallery = tmp_path / "faces.db"
    face_json(capsys, "enroll", "--name", "Alice", "--images", photos["Alice"][0], *models(gallery))
    code, _, err = face(capsys, "verify", "--name", "Alice", "--image", photos["Alice"][0], *models(gallery))
    assert code == 2 and "edgepipe face calibrate" in err and "--threshold" in err  # facenet.onnx has threshold 0
    verdict = face_json(capsys, "verify", "--name", "Alice", "--image", photos["Alice"][0], *models(gallery),
                        "--encoder-meta", "threshold=0.7")
    assert verdict["threshold"] == 0.7 and "metadata" in verdict["threshold_from"] and verdict["match"] is True


def test_list_remove_and_identify_on_an_empty_gallery(tmp_path, capsys, photos):
    gallery = tmp_path / "faces.db"
    code, _, err = face(capsys, "list", "--gallery", gallery)
    assert code == 2 and "no face gallery" in err
    face_json(capsys, "enroll", "--name", "Alice", "--images", *photos["Alice"], *models(gallery))
    listing = face_json(capsys, "list", "--gallery", gallery)
    assert [(p["name"], p["n_embeddings"]) for p in listing["people"]] == [("Alice", len(photos["Alice"]))]
    assert listing["encoder"]["name"] == "facenet.onnx" and listing["threshold"] is None
    removed = face_json(capsys, "remove", "Alice", "--gallery", gallery)
    assert removed["people"] == ["Alice"] and removed["embeddings"] == len(photos["Alice"])
    assert face_json(capsys, "list", "--gallery", gallery)["people"] == []
    code, _, err = face(capsys, "identify", "--image", photos["Alice"][0], "--threshold", "1", *models(gallery))
    assert code == 2 and "is empty" in err and "edgepipe face enroll" in err


def test_enroll_from_a_source_takes_count_shots(tmp_path, capsys, photos):
    gallery = tmp_path / "faces.db"
    folder = tmp_path / "camera"
    folder.mkdir()
    cv2.imwrite(str(folder / "0.png"), np.full((480, 640, 3), 128, np.uint8))  # no face: skipped
    for i, path in enumerate(photos["Alice"][:2], 1):
        shutil.copy(path, folder / f"{i}.png")
    enrolled = face_json(capsys, "enroll", "--name", "Alice", "--source", folder, "--count", "2", *models(gallery))
    assert enrolled["enrolled"] == ["1.png", "2.png"] and enrolled["total"] == 2
    code, _, err = face(capsys, "enroll", "--name", "Bob", "--source", folder, "--count", "3", *models(gallery))
    assert code == 2 and "only 2 of --count 3" in err
    with FaceDB.open(gallery, create=False) as db:
        assert [p.name for p in db.people()] == ["Alice"]


def test_a_gallery_from_a_newer_schema_is_refused_and_kept(tmp_path, capsys, photos):
    gallery = tmp_path / "faces.db"
    face_json(capsys, "enroll", "--name", "Alice", "--images", photos["Alice"][0], *models(gallery))
    with sqlite3.connect(gallery) as conn:
        conn.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
    for argv in (["list", "--gallery", gallery],
                 ["enroll", "--name", "Bob", "--images", photos["Bob"][0], *models(gallery)]):
        code, _, err = face(capsys, *argv)
        assert code == 2 and "schema version 99" in err and "upgrade edgepipe" in err
    with sqlite3.connect(gallery) as conn:
        conn.execute("UPDATE meta SET value = 1 WHERE key = 'schema_version'")
    listing = face_json(capsys, "list", "--gallery", gallery)
    assert [(p["name"], p["n_embeddings"]) for p in listing["people"]] == [("Alice", 1)]


def test_a_damaged_gallery_is_one_line_and_left_as_it_is(tmp_path, capsys, photos):
    gallery = tmp_path / "faces.db"
    damaged = b"SQLite format 3\x00" + bytes(range(256)) * 8  # SQLite's header, then garbage
    gallery.write_bytes(damaged)
    for argv in (["list", "--gallery", gallery],
                 ["enroll", "--name", "Alice", "--images", photos["Alice"][0], *models(gallery)]):
        code, _, err = face(capsys, *argv)
        assert code == 2 and err.startswith(f"edgepipe face: error: gallery {gallery}: ") and err.count("\n") == 1
    assert gallery.read_bytes() == damaged


def test_a_wrong_encoder_is_refused_then_reencoded(tmp_path, capsys, photos):
    gallery = tmp_path / "faces.db"
    face_json(capsys, "enroll", "--name", "Alice", "--images", photos["Alice"][0], *models(gallery))
    retrained = onnx.load(str(ENCODER))
    retrained.doc_string = "the same weights in another file: another sha256"
    other = tmp_path / "facenet-v2.onnx"
    onnx.save(retrained, str(other))
    with_other = [*models(gallery), "--encoder", other]
    code, _, err = face(capsys, "identify", "--image", photos["Alice"][0], "--threshold", "1", *with_other)
    assert code == 2 and "--reencode" in err and "facenet.onnx" in err
    assert face_json(capsys, "list", "--gallery", gallery)["encoder"]["name"] == "facenet.onnx"

    found = face_json(capsys, "identify", "--image", photos["Alice"][0], "--threshold", "0.01", *with_other,
                      "--reencode")
    assert found["name"] == "Alice" and found["distance"] < EXACT  # same weights: the same embedding again
    listing = face_json(capsys, "list", "--gallery", gallery)
    assert listing["encoder"]["name"] == "facenet-v2.onnx" and listing["people"][0]["n_embeddings"] == 1


def test_export_then_import_into_a_new_gallery(tmp_path, capsys, photos):
    gallery, copy, file = tmp_path / "faces.db", tmp_path / "copy.db", tmp_path / "gallery.json"
    for name in NAMES[:2]:
        face_json(capsys, "enroll", "--name", name, "--images", *photos[name], *models(gallery))
    exported = face_json(capsys, "export", file, "--gallery", gallery)
    assert exported["people"] == list(NAMES[:2])
    imported = face_json(capsys, "import", file, "--gallery", copy)
    assert imported["people"] == list(NAMES[:2]) and imported["embeddings"] == exported["embeddings"]
    with FaceDB.open(gallery, create=False) as a, FaceDB.open(copy, create=False) as b:
        assert a.encoder == b.encoder
        for name in NAMES[:2]:
            np.testing.assert_array_equal(a.embeddings_of(name), b.embeddings_of(name))
    code, _, err = face(capsys, "import", file, "--gallery", copy)
    assert code == 2 and "already in gallery" in err
    assert face_json(capsys, "import", file, "--gallery", copy, "--replace")["people"] == list(NAMES[:2])


def test_a_failed_import_creates_no_gallery(tmp_path, capsys):
    file = tmp_path / "gallery.json"
    file.write_text(json.dumps({"format": "edgepipe-face-gallery", "schema_version": 1, "people": [],
                                "encoder": {"sha256": "ab" * 32, "embedding_size": 128, "name": "x.onnx"},
                                "threshold": "not an object"}))
    code, _, err = face(capsys, "import", file, "--gallery", tmp_path / "new.db")
    assert code == 2 and "threshold must be an object" in err
    assert not (tmp_path / "new.db").exists()


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
