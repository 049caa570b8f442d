"""The face-check kiosk: the per-visit decision rule, and the whole kiosk on a generated video of visitors."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.request

import cv2
import numpy as np
import pytest

from edgepipe.apps.face.gallery import FaceDB
from edgepipe.apps.face.kiosk import CLOSER, NOBODY, PARTIAL, Decider, Observation
from edgepipe.apps.face.truth import score_visits
from edgepipe.postprocess.embeddings import UNKNOWN
from tests import browser
from tests.kiosk_scenario import make_scenario, run_kiosk


def feed(decider: Decider, labels: list[str], fps: float = 10.0) -> list[tuple[int, str, str]]:
    """Run labels through the decider at fps; returns (frame, kind, name) of each decision."""
    out = []
    for i, label in enumerate(labels):
        event = decider.update(Observation(label, 0.1), i, i / fps)
        if event is not None:
            out.append((i, event.kind, event.name))
    return out


def test_a_name_is_decided_after_confirm_frames_once_per_visit():
    labels = [NOBODY, "Ada", "Ada", "Ada", "Ada", "Ada", "Ada"]
    assert feed(Decider(confirm=3, cooldown=1.0), labels) == [(3, "welcome", "Ada")]


def test_flicker_resets_the_streak():
    labels = ["Ada", "Ada", UNKNOWN, "Ada", "Ada", UNKNOWN, "Ada", "Ada", "Ada"]
    assert feed(Decider(confirm=3), labels) == [(8, "welcome", "Ada")]


def test_a_visit_ends_after_cooldown_without_a_face():
    short_gap = ["Ada"] * 4 + [NOBODY] * 5 + ["Ada"] * 4  # 0.5 s without a face: the same visit
    assert feed(Decider(confirm=3, cooldown=1.0), short_gap) == [(2, "welcome", "Ada")]
    long_gap = ["Ada"] * 4 + [NOBODY] * 15 + ["Ada"] * 4  # 1.5 s: a new visit
    assert feed(Decider(confirm=3, cooldown=1.0), long_gap) == [(2, "welcome", "Ada"), (21, "welcome", "Ada")]


def test_unknown_people_are_never_welcomed_and_small_or_cut_faces_never_decided():
    d = Decider(confirm=2, cooldown=1.0)
    assert feed(d, [UNKNOWN] * 5) == [(1, "unknown", "")]
    assert d.text == "Unknown person"
    d = Decider(confirm=2)
    assert feed(d, [CLOSER] * 10 + [PARTIAL] * 10) == []
    assert d.text == "Step closer"
    d = Decider(confirm=2)
    assert feed(d, [PARTIAL] * 3 + ["Ada"] * 2) == [(4, "welcome", "Ada")]
    assert d.text == "Welcome, Ada"


def test_decider_rejects_bad_settings():
    with pytest.raises(ValueError, match="confirm must be >= 1"):
        Decider(confirm=0)


# The kiosk end to end on a generated video with the trained face detector and encoder (tests/assets).

@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    return make_scenario(tmp_path_factory.mktemp("kiosk"))


def test_enrolled_visitors_are_welcomed_once_per_visit_and_logged(scenario):
    summary = run_kiosk(scenario)
    score = score_visits(summary.events, scenario.visits, scenario.names)
    assert score.ok, (score, summary.lines())
    assert score.unknown_visits >= 1 and score.enrolled_visits >= 4
    assert score.far_decisions == 0  # the visitor who stays far away only hears "Step closer"
    with FaceDB.open(scenario.gallery, readonly=True) as db:
        logged = [(e.decision, e.name) for e in db.events(limit=1000) if e.source == str(scenario.video)]
    assert sorted(logged) == sorted((e.kind, e.name) for e in summary.events)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_kiosk_page_in_headless_chromium(scenario, tmp_path):
    browser.require_chromium()
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    result, stop = {}, threading.Event()
    thread = threading.Thread(target=lambda: result.update(summary=run_kiosk(
        scenario, stop, serve=f"127.0.0.1:{port}", loop=True, cooldown=60.0)), daemon=True)
    thread.start()
    verdict, deadline = "", time.time() + 60
    while time.time() < deadline and not verdict and thread.is_alive():
        time.sleep(0.05)
        try:
            with urllib.request.urlopen(url + "stats.json", timeout=5) as r:
                verdict = json.loads(r.read()).get("verdict", "")
        except OSError:
            continue  # not serving yet
    assert verdict, "the kiosk page showed no decision"
    try:
        dom = browser.dump_dom(url, timeout_s=90)  # the kiosk keeps both cores busy meanwhile
        png = browser.screenshot(url, tmp_path / "kiosk.png", timeout_s=90)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert re.search(r'id="verdict"[^>]*>(Welcome, \w+|Unknown person)<', dom), dom[-2000:]
    shot = cv2.imread(str(png), cv2.IMREAD_COLOR)
    colors = len(np.unique(shot.reshape(-1, 3), axis=0))
    assert colors > 2000, f"no video frame on the kiosk page's screenshot {png} ({colors} colors)"
    assert "summary" in result
