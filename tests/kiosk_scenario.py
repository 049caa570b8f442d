"""A generated kiosk scenario for tests and benchmarks: a video of visitors, a gallery of the enrolled ones with a
threshold calibrated on held-out identities, and the kiosk run on it (the trained test assets as models)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

from edgepipe.apps.detect.pipeline import Detector
from edgepipe.apps.face.gallery import EncoderId, FaceDB
from edgepipe.apps.face.kiosk import Decider, KioskOptions, KioskSummary, kiosk
from edgepipe.apps.face.pipeline import Encoder, FaceAnalyzer
from edgepipe.apps.face.service import FaceModels
from edgepipe.apps.options import ModelOptions
from edgepipe.apps.stream.loop import StreamOptions
from edgepipe.export.data.faces import identity_splits
from edgepipe.export.data.kiosk import enrollment_images, make_kiosk_video
from edgepipe.postprocess.calibration import calibrate, equal_error_rate
from edgepipe.runtime import load

ASSETS = Path(__file__).resolve().parent / "assets"
DETECTOR, ENCODER = ASSETS / "yolo-face.onnx", ASSETS / "facenet.onnx"
NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John")


@dataclass(frozen=True)
class Scenario:
    video: Path
    gallery: Path
    visits: list[dict]
    names: tuple[str, ...]
    threshold: float
    eer: float


def analyzer(conf: float = 0.5) -> FaceAnalyzer:
    detector = Detector(load(DETECTOR, providers="cpu"), conf=conf)
    return FaceAnalyzer(detector, Encoder(load(ENCODER, providers="cpu")))


def embed_photos(fa: FaceAnalyzer, photos: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray], list[int]]:
    """Embeddings (K, D) and crops of the photos with exactly one checkable face, and the photos' indices."""
    rows, crops, kept = [], [], []
    for i, photo in enumerate(photos):
        faces = fa(photo)
        if len(faces) == 1 and faces.embedded[0]:
            rows.append(faces.embeddings[0])
            crops.append(faces.crops[0])
            kept.append(i)
    return np.array(rows, np.float32).reshape(len(rows), -1), crops, kept


def calibration_distances(fa: FaceAnalyzer, faces: np.ndarray, photos_each: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Genuine and impostor squared distances between enrollment-style photos of held-out identities."""
    emb, _, kept = embed_photos(fa, enrollment_images(faces, photos_each, seed=7))
    ids = np.array(kept) // photos_each
    genuine, impostor = [], []
    for a, b in combinations(range(len(emb)), 2):
        d = float(((emb[a] - emb[b]) ** 2).sum())
        (genuine if ids[a] == ids[b] else impostor).append(d)
    return np.array(genuine), np.array(impostor)


def make_scenario(folder: Path, n_enrolled: int = 4, n_unknown: int = 3, photos: int = 3, seed: int = 0,
                  far: float = 1e-2) -> Scenario:
    """Video of test identities (the first n_enrolled enrolled, the next n_unknown not), a gallery enrolled from
    photos of them, and a threshold at FAR far calibrated on the dev identities."""
    test, dev = identity_splits()["test"].faces, identity_splits()["dev"].faces
    enrolled, unknown = test[:n_enrolled], test[n_enrolled : n_enrolled + n_unknown]
    video = folder / "kiosk.mp4"
    make_kiosk_video(video, enrolled, unknown, seed=seed)
    fa = analyzer()
    gallery = folder / "faces.db"
    names = NAMES[:n_enrolled]
    with FaceDB.open(gallery, EncoderId.of_file(ENCODER, fa.encoder.embedding_size)) as db:
        for k, name in enumerate(names):
            emb, crops, _ = embed_photos(fa, enrollment_images(enrolled[k : k + 1], photos, seed=seed + k))
            db.enroll(name, emb, crops, source="scenario")
        genuine, impostor = calibration_distances(fa, dev)
        cal = calibrate(genuine, impostor, far)
        eer = equal_error_rate(genuine, impostor)[0]
        db.set_threshold(cal.threshold, far=far, eer=eer)
    visits = json.loads(video.with_suffix(".visits.json").read_text())
    return Scenario(video, gallery, visits, names, cal.threshold, eer)


def run_kiosk(
    scenario: Scenario, stop: threading.Event | None = None, serve: str = "", loop: bool = False,
    cooldown: float = Decider.cooldown,
) -> KioskSummary:
    """The kiosk on the scenario's video (looped with loop; its page served at serve, "HOST:PORT", when given) until
    the video ends or stop is set."""
    models = FaceModels(ModelOptions(DETECTOR, "cpu"), ModelOptions(ENCODER, "cpu"))
    stream = StreamOptions(str(scenario.video), loop=loop, serve=serve, show=False)
    return kiosk(KioskOptions(models, stream, scenario.gallery, cooldown=cooldown), stop)
