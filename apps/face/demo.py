"""run_kiosk_demo(KioskDemoOptions): sample people -> a gallery of the enrolled -> the kiosk on a clip, scored."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgepipe.apps.face.calibration import FAR, calibrate_gallery
from edgepipe.apps.face.kiosk import KioskOptions, KioskSummary, kiosk
from edgepipe.apps.face.samples import MANIFEST, Samples, SamplesOptions, check_models, shipped_models, write_samples
from edgepipe.apps.face.service import FaceModels, enroll
from edgepipe.apps.face.truth import VisitScore, score_visits
from edgepipe.apps.stream.loop import StreamOptions
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.progress import Progress

SAMPLE_NAMES = frozenset({"enroll", "door", "calibrate", "kiosk.mp4", "kiosk.jsonl", "kiosk.visits.json", MANIFEST})
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")  # the files an SQLite file may leave beside it


@dataclass(frozen=True)
class KioskDemoOptions:
    """out: where the demo's files go (samples/, faces.db, kiosk-annotated.mp4). models: the face detector and
    encoder (the shipped ones by default). people, photos, unknown, fps, seed: the samples (`face samples`).
    far: the false-accept rate the threshold is calibrated for on held-out people; threshold: use this one instead.
    progress: bars (or plain lines) with the time left on stderr."""

    out: Path = Path("runs/kiosk-demo")
    models: FaceModels = field(default_factory=shipped_models)
    people: int = SamplesOptions.people
    photos: int = SamplesOptions.photos
    unknown: int = SamplesOptions.unknown
    fps: int = SamplesOptions.fps
    seed: int = SamplesOptions.seed
    far: float = FAR
    threshold: float | None = None
    progress: bool = True

    def samples(self) -> SamplesOptions:
        return SamplesOptions(self.out / "samples", self.models, self.people, self.photos, self.unknown, fps=self.fps,
                              seed=self.seed, progress=self.progress)


@dataclass(frozen=True)
class KioskDemoResult:
    """What the demo made and how the kiosk's decisions compare with the clip's truth. refused: enrollment photos
    refused (none when the samples keep their promise); seconds: each step's wall time; reused: the samples
    were an earlier run's."""

    samples: str
    gallery: str
    video: str
    annotated_video: str
    threshold: float
    refused: tuple[str, ...]
    score: VisitScore
    summary: KioskSummary
    seconds: dict[str, float]
    reused: bool

    @property
    def matches(self) -> bool:
        """Each enrolled visit welcomed once by its name, nothing else welcomed, every unknown visitor refused,
        nothing decided about the visitor too far away, and every enrollment photo taken."""
        s = self.score
        return s.ok and s.unknown_events == s.unknown_visits and s.far_decisions == 0 and not self.refused

    def as_dict(self) -> dict[str, Any]:
        """The result as the demo's --json prints it."""
        return {"samples": self.samples, "gallery": self.gallery, "video": self.video,
                "annotated_video": self.annotated_video, "threshold": round(self.threshold, 4),
                "refused": list(self.refused), "score": asdict(self.score), "matches": self.matches,
                "frames": self.summary.frames, "seconds": {k: round(v, 1) for k, v in self.seconds.items()},
                "reused": self.reused}

    def lines(self) -> list[str]:
        s = self.score
        verdict = "match the truth" if self.matches else "do NOT match the truth"
        return [*self.summary.lines(),
                f"against the clip's truth ({Path(self.video).with_suffix('.visits.json')}):",
                f"  enrolled visitors welcomed once by their name: {s.welcomed} of {s.enrolled_visits} visits",
                f"  unknown visitors refused (\"Unknown person\"): {s.unknown_events} of {s.unknown_visits} visits",
                f"  wrong welcomes {s.wrong}, repeated welcomes {s.repeated}, decisions about the visitor who "
                f"stayed far away {s.far_decisions}, enrollment photos refused {len(self.refused)}",
                "time: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()),
                f"annotated video: {self.annotated_video}",
                f"the kiosk's decisions {verdict}"]


def run_kiosk_demo(options: KioskDemoOptions) -> KioskDemoResult:
    """Write (or reuse) the samples, enroll them into a new gallery calibrated on the held-out people, run the
    kiosk on the clip, and score its decisions against the clip's truth."""
    check_models(options.models)
    options.out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    samples, reused = samples_for(options.samples())
    seconds["samples"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    gallery, threshold, refused = build_gallery(options, samples)
    seconds["gallery"] = time.perf_counter() - t0
    print(f"gallery {gallery}: {len(samples.names)} people enrolled, threshold {threshold:.4f} for FAR "
          f"{options.far:g} on {samples.recipe['calibration_people']} held-out people, in {seconds['gallery']:.1f} s")
    annotated = options.out / "kiosk-annotated.mp4"
    frames = len(Path(samples.truth).read_text().splitlines())
    t0 = time.perf_counter()
    with Progress(frames, "kiosk", options.progress) as progress:
        summary = kiosk(KioskOptions(options.models, StreamOptions(samples.video, show=False), gallery,
                                     options.threshold, save=annotated), progress=progress)
    seconds["kiosk"] = time.perf_counter() - t0
    visits = json.loads(Path(samples.visits).read_text())
    score = score_visits(summary.events, visits, samples.names)
    used = options.threshold if options.threshold is not None else threshold
    return KioskDemoResult(samples.folder, str(gallery), samples.video, str(annotated), used, refused, score,
                           summary, seconds, reused)


def samples_for(options: SamplesOptions) -> tuple[Samples, bool]:
    """The samples in options.out when an earlier run made them complete with the same options (said so), else
    written anew there (an incomplete or different earlier set removed first). Returns (samples, reused)."""
    folder = options.out
    earlier = Samples.read(folder)
    if earlier is not None and earlier.recipe == options.recipe():
        print(f"reusing the samples in {folder} (complete, made with the same options; delete it to make them again)")
        return earlier, True
    if folder.exists():
        foreign = sorted(p.name for p in folder.iterdir() if p.name not in SAMPLE_NAMES and not p.name.endswith(".tmp"))
        if foreign:
            raise UserError(f"{folder} holds files the demo did not write ({', '.join(foreign[:3])}): move them, or "
                            "pass another --out")
        why = "made with other options" if earlier is not None else "incomplete"
        print(f"making the samples in {folder} again (the earlier ones are {why})")
        shutil.rmtree(folder)
    return write_samples(options), False


def build_gallery(options: KioskDemoOptions, samples: Samples) -> tuple[Path, float, tuple[str, ...]]:
    """A new gallery of the samples' enrolled people, calibrated on their held-out people, at out/faces.db (built
    beside it and renamed: an earlier one stays whole until then). Returns (path, threshold, photos refused)."""
    final, partial = options.out / "faces.db", options.out / "faces.partial.db"
    _remove_sqlite(partial)
    partial.unlink(missing_ok=True)
    refused: list[str] = []
    for name in samples.names:
        result = enroll(name, options.models, partial, [Path(p) for p in samples.enroll[name]])
        refused += result.refused
    report = calibrate_gallery(options.models, partial, dataset=Path(samples.calibrate), far=options.far,
                               progress=options.progress)
    _remove_sqlite(final)
    os.replace(partial, final)
    return final, report.calibration.threshold, tuple(refused)


def _remove_sqlite(path: Path) -> None:
    """Remove the files an SQLite file at path left beside it (none after a clean close)."""
    for suffix in SQLITE_SIDECARS:
        Path(f"{path}{suffix}").unlink(missing_ok=True)
