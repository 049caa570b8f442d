"""The face-check kiosk: detect -> crop -> embed -> identify per frame, a decision once per visit, an audit log."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from edgepipe.apps.face.gallery import Enrolled, GalleryStatus, LiveGallery
from edgepipe.apps.face.gallery.location import Location, file_inputs
from edgepipe.apps.face.pipeline import FaceAnalyzer, Faces
from edgepipe.apps.face.service import DEFAULT_GALLERY, FaceModels, decision_threshold, open_for_encoder
from edgepipe.apps.stream.events import EventSink, PublishOptions
from edgepipe.apps.stream.loop import FpsMeter, StreamOptions, drive, stop_on_sigterm
from edgepipe.apps.stream.mqtt import PublishStats
from edgepipe.apps.stream.sinks import Event, Item, Sink, SinkWorker, VideoSink, close_sinks, screen_sinks
from edgepipe.apps.stream.sources import Capture, Frame
from edgepipe.postprocess.detections import Detections
from edgepipe.postprocess.embeddings import UNKNOWN, identify
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.files import Output, check_outputs
from edgepipe.runtime.progress import Progress

log = logging.getLogger("edgepipe.kiosk")

CAMERA = "0"  # the kiosk's source on the command line, by default: the first camera
NOBODY, CLOSER, PARTIAL = "", "step closer", "partly in view"
VERDICTS = {"welcome": "Welcome, {name}", "unknown": "Unknown person", "closer": "Step closer", "none": ""}


@dataclass(frozen=True)
class Observation:
    """What one frame shows at the kiosk: the largest face's label (a name, "unknown", CLOSER for a face too small
    to check, PARTIAL for a face cut by the frame's edge, NOBODY without a face) and its best distance (inf when
    there is none)."""

    label: str
    distance: float = float("inf")


@dataclass(frozen=True)
class Decision:
    """A decision: kind "welcome" (name set) or "unknown", at frame / time (seconds), with the best distance."""

    kind: str
    name: str
    frame: int
    time: float
    distance: float


@dataclass
class Decider:
    """Turns per-frame observations into one decision per visit.

    A visit lasts while a face is in view; it ends once no face was seen for cooldown seconds (so a person who
    stays logs one event, and one who comes back later is welcomed again). Within a visit, the first label (a name
    or "unknown") to win confirm consecutive frames is decided, once; a face too small (CLOSER) or cut by the
    frame's edge (PARTIAL) keeps the visit going but is never decided. verdict: what the screen shows now
    ("welcome", "unknown", "closer" for a face too small, "none").
    """

    confirm: int = 3
    cooldown: float = 2.0
    verdict: str = "none"
    name: str = ""
    _label: str = NOBODY
    _streak: int = 0
    _last_face: float = float("-inf")
    _decided: bool = False

    def __post_init__(self) -> None:
        if self.confirm < 1 or self.cooldown < 0:
            raise UserError(f"confirm must be >= 1 frame and cooldown >= 0 s, but got {self.confirm}, {self.cooldown}")

    def update(self, obs: Observation, frame: int, t: float) -> Decision | None:
        """Feed one frame's observation (t: seconds); returns the decision this frame made, if any."""
        if obs.label == NOBODY:
            if t - self._last_face > self.cooldown:
                self._decided, self.verdict, self.name = False, "none", ""  # the visit is over
            self._label, self._streak = NOBODY, 0
            return None
        self._last_face = t
        self._streak = self._streak + 1 if obs.label == self._label else 1
        self._label = obs.label
        if self._decided:
            return None
        if obs.label in (CLOSER, PARTIAL):
            self.verdict = "closer" if obs.label == CLOSER else self.verdict
            return None
        if self._streak < self.confirm:
            return None
        self._decided = True
        kind = "unknown" if obs.label == UNKNOWN else "welcome"
        self.verdict, self.name = kind, "" if kind == "unknown" else obs.label
        return Decision(kind, self.name, frame, t, obs.distance)

    @property
    def text(self) -> str:
        return VERDICTS[self.verdict].format(name=self.name)


@dataclass(frozen=True)
class KioskSummary:
    """A kiosk run: frames, events, per-frame latency medians (ms) of detection, embedding + identification, and the
    gallery at the end."""

    frames: int
    seconds: float
    events: list[Decision]
    detect_ms: float
    recognize_ms: float
    frame_ms: float
    stopped: str
    gallery: GalleryStatus
    published: PublishStats | None = None

    def lines(self) -> list[str]:
        counts = Counter(e.kind for e in self.events)
        out = [f"{self.frames} frames in {self.seconds:.1f} s; per frame (medians): detect {self.detect_ms:.2f} ms, "
               f"embed + identify {self.recognize_ms:.2f} ms, total {self.frame_ms:.2f} ms; {self.stopped}",
               f"{counts['welcome']} welcome(s), {counts['unknown']} unknown person event(s)",
               f"gallery: {self.gallery.people} people, {self.gallery.embeddings} embeddings at the end "
               f"(generation {self.gallery.generation}){'' if self.gallery.online else '; ' + self.gallery.note}"]
        out += self.published.lines() if self.published else []
        out += [f"  frame {e.frame:>6} t={e.time:7.2f}s  {e.kind:<8} {e.name} (distance {e.distance:.3f})"
                for e in self.events]
        return out


def observe(faces: Faces, enrolled: Enrolled, threshold: float, metric: str) -> Observation:
    """The largest face's label and distance (Faces are largest first), against the enrolled embeddings."""
    if not len(faces):
        return Observation(NOBODY)
    if faces.cut[0]:
        return Observation(PARTIAL)
    if not faces.embedded[0]:
        return Observation(CLOSER)
    match = identify(faces.embeddings[:1], enrolled.gallery, enrolled.labels, threshold, metric=metric)[0]
    return Observation(match.label, match.distance)


def run(
    capture: Capture,
    analyzer: FaceAnalyzer,
    db: LiveGallery,
    threshold: float,
    decider: Decider,
    worker: SinkWorker,
    stop: threading.Event,
    source: str = "kiosk",
    max_frames: int = 0,
    progress: Progress | None = None,
) -> KioskSummary:
    """The kiosk loop until the source ends, stop is set or max_frames. Each decision goes to the audit log. db: the
    gallery as store.follow() gives it (its matrix() and log() never wait on a network). progress: counts the
    frames."""
    detector, metric = analyzer.detector, analyzer.encoder.distance
    events: list[Decision] = []
    det_ms, rec_ms, frame_ms = [], [], []
    meter = FpsMeter()

    def step(frame: Frame) -> Item:
        t1 = time.perf_counter()
        (result,) = detector.infer(frame.prepared)
        t2 = time.perf_counter()
        faces = analyzer.analyze(frame.image, result.detections)
        obs = observe(faces, db.matrix(), threshold, metric)
        t3 = time.perf_counter()
        event = decider.update(obs, frame.index, frame.time)
        told: tuple[Event, ...] = ()
        if event is not None:
            events.append(event)
            db.log(source, event.kind, event.distance, event.name)
            log.info("%s: %s (distance %.3f)", event.kind, event.name or "unknown person", event.distance)
            told = (Event("decision", {"kind": event.kind, "name": event.name, "distance": event.distance}),)
        det_ms.append((t2 - t1) * 1e3)
        rec_ms.append((t3 - t2) * 1e3)
        frame_ms.append((time.perf_counter() - t1) * 1e3)
        fps = meter.tick()
        if progress is not None:
            progress.update()
        kind = decider.verdict if decider.verdict != "closer" else "info"
        gallery = db.status()
        return Item(frame, _labeled(faces, obs), f"{decider.text}  {fps:.1f} FPS".strip(), fps, frame_ms[-1],
                    {"faces": len(faces)}, verdict=decider.text, verdict_kind=kind, notice=gallery.note,
                    state={"gallery": asdict(gallery)}, events=told)

    t0 = time.perf_counter()
    frames, stopped = drive(capture, worker, stop, max_frames, step)
    return KioskSummary(frames, time.perf_counter() - t0, events, _median(det_ms), _median(rec_ms),
                        _median(frame_ms), stopped, db.status())


def _labeled(faces: Faces, obs: Observation) -> Detections:
    """Faces as Detections for the overlay: the largest labeled with its identity, the others "face"."""
    names = ("face", obs.label or "face")
    ids = np.zeros(len(faces), np.int64)
    if len(faces):
        ids[0] = 1
    return Detections(faces.boxes, faces.scores, ids, names)


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else 0.0


@dataclass(frozen=True)
class KioskOptions:
    """A kiosk run. models: the face detector and encoder. stream: the camera, stream or video, and the views.
    gallery: the enrolled people (an SQLite file, or a postgresql:// URL: followed live). threshold: accept when
    distance <= this (None: the gallery's calibrated one, else the encoder's). reencode: re-embed a gallery
    enrolled with another encoder first. confirm: frames the same identity must win in a row. cooldown: seconds
    without a face that end a visit. save: an annotated video. publish: each decision, and the faces seen, to an
    MQTT broker.

    The command line's source is CAMERA unless --source names another."""

    models: FaceModels
    stream: StreamOptions
    gallery: Location = DEFAULT_GALLERY
    threshold: float | None = None
    reencode: bool = False
    confirm: int = Decider.confirm
    cooldown: float = Decider.cooldown
    save: Path | None = None
    publish: PublishOptions | None = None


def kiosk(
    options: KioskOptions, stop: threading.Event | None = None, progress: Progress | None = None
) -> KioskSummary:
    """Build the kiosk and run it until the source ends or stop is set (SIGTERM and q in the window set it too).
    progress: counts the frames (a video's, in the demo)."""
    spec = options.stream.spec()
    if spec.kind == "images":
        raise UserError(f"the kiosk reads a camera, stream or video, but got {spec.describe()}: use "
                        "`edgepipe face identify --image FILE` for photos")
    analyzer = options.models.analyzer()
    decider = Decider(options.confirm, options.cooldown)
    db = open_for_encoder(options.gallery, analyzer.encoder, options.models.encoder.path, False, options.reencode)
    live: LiveGallery = db
    try:
        threshold, where = decision_threshold(options.threshold, db, analyzer.encoder)
        log.info("decision threshold %.4f (%s)", threshold, where)
        if not db.people():
            log.warning("gallery %s is empty: everyone will be 'Unknown person'", db.where)
        live = db.follow()
        inputs = [*options.models.detector.inputs("--detector"), *options.models.encoder.inputs("--encoder"),
                  *spec.inputs("--source"), *file_inputs(options.gallery)]
        check_outputs([Output("--save", options.save)], inputs)
        stream = options.stream
        sinks: list[Sink] = [EventSink(options.publish, dict(stream.named()))] if options.publish else []
        stop = stop or threading.Event()
        try:
            capture = Capture(spec, prepare=analyzer.detector.prepare, retries=stream.retries, loop=stream.loop)
            capture.open()
            try:
                sinks += [VideoSink(options.save, capture.fps)] if options.save else []
                sinks += screen_sinks(stream.serve, stream.show, "edgepipe kiosk", stop)
            except BaseException:
                capture.close()
                raise
        except BaseException:
            close_sinks(sinks)
            raise
        with stop_on_sigterm(stop):
            summary = run(capture, analyzer, live, threshold, decider, SinkWorker(sinks), stop, stream.sources[0],
                          stream.max_frames, progress)
        published = [s.stats for s in sinks if isinstance(s, EventSink)]
        return replace(summary, published=published[0]) if published else summary
    finally:
        live.close()
