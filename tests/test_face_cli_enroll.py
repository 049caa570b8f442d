"""`edgepipe face` enroll, verify and identify in-process on generated enrollment photos: the answers against the
pipeline and a brute-force reference, the services and the shared option defaults, and every refused image, probe,
name and threshold (issue 7)."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepipe.apps.face.gallery import FaceDB
from tests.face_commands import CONF, DETECTOR, ENCODER, EXACT, MIN_FACE, NAMES, embed, face, face_json, models


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
    assert code == 1 and out.startswith("no match:")  # two people's crops are never the same embedding

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
    strict = face_json(capsys, "identify", "--image", query, "--threshold", str(d[best] / 2), *models(gallery),
                       code=1)
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
