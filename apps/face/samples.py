"""`edgepipe face samples DIR`: generated people to try the face commands on, every photo checked to enroll."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgepipe.apps.face.pipeline import FaceAnalyzer
from edgepipe.apps.face.service import FaceModels, one_face
from edgepipe.apps.options import ModelOptions
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.files import write_atomic
from edgepipe.runtime.progress import Progress

# The face models edgepipe trained and keeps with its source (tests/assets/README.md says how they were made).
SHIPPED = Path(__file__).resolve().parents[2] / "tests" / "assets"
DETECTOR, ENCODER = SHIPPED / "yolo-face.onnx", SHIPPED / "facenet.onnx"
NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John")
MANIFEST = "samples.json"  # written last: its presence means the folder is complete
RETAKES = 30  # photos drawn at most for one sample photo before giving up
CALIBRATION_PHOTOS = 4  # photos of each held-out person in calibrate/
JPEG_QUALITY = 95


def shipped_models() -> FaceModels:
    """The face models edgepipe keeps with its source, at the face commands' defaults."""
    return FaceModels(ModelOptions(DETECTOR), ModelOptions(ENCODER))


def check_models(models: FaceModels) -> None:
    """UserError naming the fix when a model file is missing (a wheel install lacks the shipped ones)."""
    for path, what, recipe in ((models.detector.path, "--detector", "yolo-face"),
                               (models.encoder.path, "--encoder", "facenet")):
        if not path.is_file():
            raise UserError(f"{what} {path} not found (edgepipe keeps its trained face models in tests/assets of its "
                            f"source, which a wheel install lacks): pass {what}, e.g. a model made with `edgepipe "
                            f"train {recipe}` and `edgepipe export`")


@dataclass(frozen=True)
class SamplesOptions:
    """What `face samples` writes into out (a folder, created; no file in it may exist yet). people: enrolled people
    (at most len(NAMES)), photos: enrollment photos of each; unknown: people never enrolled, one door photo each;
    calibration_people: held-out people (the dev identities) for `face calibrate`; video: a kiosk clip of every
    enrolled person twice, every unknown once and one visitor far away, at fps. models: every photo must enroll
    with them (`face enroll`'s check), else it is drawn again. seed: the photos and the clip."""

    out: Path
    models: FaceModels = field(default_factory=shipped_models)
    people: int = 4
    photos: int = 3
    unknown: int = 3
    calibration_people: int = 20
    video: bool = True
    fps: int = 15
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.people <= len(NAMES):
            raise UserError(f"--people must be 1..{len(NAMES)}, but got {self.people}")
        if self.photos < 1 or self.unknown < 0 or self.fps < 1:
            raise UserError(f"--photos and --fps must be >= 1 and --unknown >= 0, but got {self.photos}, "
                            f"{self.fps} and {self.unknown}")
        if self.people + self.unknown > 20 or not 2 <= self.calibration_people <= 20:
            raise UserError(f"the 20 test identities hold --people + --unknown ({self.people + self.unknown}), and "
                            f"--calibration-people must be 2..20 (the dev identities), but got "
                            f"{self.calibration_people}")

    def recipe(self) -> dict:
        """What decides the files written (the manifest keeps it, so a later run knows what it would reuse)."""
        return {"people": self.people, "photos": self.photos, "unknown": self.unknown,
                "calibration_people": self.calibration_people, "video": self.video, "fps": self.fps,
                "seed": self.seed, "detector": str(self.models.detector.path), "encoder": str(self.models.encoder.path),
                "conf": self.models.conf, "min_face": self.models.min_face}


@dataclass(frozen=True)
class Samples:
    """A samples folder: enroll[name] the photos of each enrolled person, door the photos to verify or identify
    (one of each enrolled person, then the unknown people's), calibrate the folder of held-out people, video the
    kiosk clip ("" without one) with its truth files, retakes the photos drawn again, seconds the time taken."""

    folder: str
    names: tuple[str, ...]
    enroll: dict[str, list[str]]
    door: list[str]
    calibrate: str
    video: str
    truth: str
    visits: str
    retakes: int
    seconds: float
    detector: str
    encoder: str
    recipe: dict

    @classmethod
    def read(cls, folder: Path) -> Samples | None:
        """The samples written in folder when they are complete (manifest and every file there), else None."""
        try:
            data = json.loads((folder / MANIFEST).read_text())
            samples = cls(**{**data, "names": tuple(data["names"])})
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return samples if all(Path(p).is_file() for p in samples.files()) else None

    def files(self) -> list[str]:
        listed = [p for paths in self.enroll.values() for p in paths] + self.door
        return listed + ([self.video, self.truth, self.visits] if self.video else [])

    def lines(self) -> list[str]:
        n_photos = sum(len(p) for p in self.enroll.values())
        models = f"--detector {shown(self.detector)} --encoder {shown(self.encoder)}"
        clip = f", a kiosk clip {self.video} (its truth: {self.visits})" if self.video else ""
        out = [f"wrote {n_photos} enrollment photos of {len(self.names)} people ({self.folder}/enroll/NAME/), "
               f"{len(self.door)} door photos ({self.folder}/door/), {self.recipe['calibration_people']} held-out "
               f"people to calibrate on ({self.calibrate}){clip} in {self.seconds:.1f} s",
               f"every photo enrolls with {shown(self.detector)} at --conf {self.recipe['conf']:g} --min-face "
               f"{self.recipe['min_face']:g} ({self.retakes} drawn again until it did)",
               "try next:",
               f"  for name in {' '.join(self.names)}; do edgepipe face enroll --name $name --images "
               f"{self.folder}/enroll/$name/*.jpg {models}; done",
               f"  edgepipe face calibrate --dataset {self.calibrate} {models}",
               f"  edgepipe face verify --name {self.names[0]} --image {self.door[0]} {models}",
               f"  edgepipe face identify --image {self.door[-1]} {models}"]
        if self.video:
            out.append(f"  edgepipe kiosk --source {self.video} --no-show --save {self.folder}/kiosk-annotated.mp4 "
                       f"{models}")
        return out


def shown(path: str | Path) -> str:
    """path as a command line to type shows it: relative to the working folder when inside it."""
    full = Path(path).resolve()
    return os.path.relpath(full) if full.is_relative_to(Path.cwd()) else str(path)


def write_samples(options: SamplesOptions) -> Samples:
    """Write the sample photos (and clip) into options.out, then the manifest; refuse if any of them exists."""
    try:
        import skimage.data  # noqa: F401  (the faces are its lfw_subset)
    except ImportError as exc:
        raise UserError("face samples draws its people from scikit-image's lfw_subset, which is not installed: "
                        "install the train extra, pip install 'edgepipe[train]'") from exc
    from edgepipe.export.data.faces import identity_splits

    check_models(options.models)
    if options.out.exists() and not options.out.is_dir():
        raise UserError(f"{options.out} is a file: face samples writes into a folder; give a new folder")
    t0 = time.perf_counter()
    out, names = options.out, NAMES[: options.people]
    test, dev = identity_splits()["test"].faces, identity_splits()["dev"].faces
    unknown = test[options.people : options.people + options.unknown]
    plan = _plan(out, names, options)
    video = out / "kiosk.mp4" if options.video else None
    existing = [p for p in [*plan, out / MANIFEST, *_video_files(video)] if p.exists()]
    if existing:
        raise UserError(f"{existing[0]} exists ({len(existing)} of the sample files do): face samples writes no file "
                        "over another; give a new folder")
    analyzer = options.models.analyzer()
    retakes = 0
    with Progress(len(plan), "sample photos", options.progress) as progress:
        for i, (path, (split, row)) in enumerate(plan.items()):
            face = (test if split == "test" else dev)[row]
            retakes += _write_photo(analyzer, face, path, [options.seed, i])
            progress.update()
    truth = visits = ""
    if video is not None:
        from edgepipe.export.data.kiosk import make_kiosk_video

        t1 = time.perf_counter()
        truth = str(make_kiosk_video(video, test[: options.people], unknown, fps=options.fps, seed=options.seed))
        visits = str(video.with_suffix(".visits.json"))
        print(f"kiosk clip {video} written in {time.perf_counter() - t1:.1f} s")
    enroll = {name: [str(p) for p in plan if p.parent == out / "enroll" / name] for name in names}
    door = [str(p) for p in plan if p.parent.name == "door"]
    samples = Samples(str(out), names, enroll, door, str(out / "calibrate"), str(video or ""), truth, visits, retakes,
                      time.perf_counter() - t0, str(options.models.detector.path), str(options.models.encoder.path),
                      options.recipe())
    write_atomic(out / MANIFEST, json.dumps(asdict(samples), indent=1).encode())
    return samples


def _plan(out: Path, names: tuple[str, ...], options: SamplesOptions) -> dict[Path, tuple[str, int]]:
    """Each photo to write: path -> (identity split, row in it)."""
    plan: dict[Path, tuple[str, int]] = {}
    for k, name in enumerate(names):
        for j in range(options.photos):
            plan[out / "enroll" / name / f"{name}-{j + 1}.jpg"] = ("test", k)
    for k, name in enumerate(names):
        plan[out / "door" / f"{name}.jpg"] = ("test", k)
    for u in range(options.unknown):
        plan[out / "door" / f"unknown-{u + 1}.jpg"] = ("test", options.people + u)
    for c in range(options.calibration_people):
        for j in range(CALIBRATION_PHOTOS):
            plan[out / "calibrate" / f"person-{c + 1:02d}" / f"{j + 1}.jpg"] = ("dev", c)
    return plan


def _video_files(video: Path | None) -> list[Path]:
    return [] if video is None else [video, video.with_suffix(".jsonl"), video.with_suffix(".visits.json")]


def _write_photo(analyzer: FaceAnalyzer, face: np.ndarray, path: Path, seed: list[int]) -> int:
    """Draw enrollment photos of face (h, w) uint8 gray until `face enroll` accepts one as the JPEG file it reads,
    and write that file to path. Returns how many were drawn again."""
    from edgepipe.export.data.kiosk import enrollment_images

    for attempt in range(RETAKES):
        (photo,) = enrollment_images(face[None], 1, seed=[*seed, attempt])
        _, data = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        try:
            one_face(analyzer, cv2.imdecode(data, cv2.IMREAD_COLOR), str(path))
        except UserError:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data.tobytes())
        return attempt
    raise UserError(f"no photo for {path} in {RETAKES} draws enrolls with this face detector (--conf, --min-face): "
                    "lower --conf or --min-face, or use the shipped models")
