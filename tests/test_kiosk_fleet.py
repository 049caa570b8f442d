"""Kiosks sharing one PostgreSQL gallery (real `edgepipe kiosk` processes, a real throwaway server): an enrollment
made by a third process reaches both running kiosks, which then welcome the person; the server killed and restarted
under a running kiosk, which keeps deciding from its copy, says so on its page and in its log, and catches up."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import cv2
import pytest

from edgepipe.apps.face.service import export_gallery, import_gallery, remove_person
from edgepipe.export.data.faces import identity_splits
from edgepipe.export.data.kiosk import enrollment_images
from tests import servers
from tests.gallery_data import REPO
from tests.kiosk_scenario import DETECTOR, ENCODER, analyzer, embed_photos, make_scenario
from tests.mqtt_subscriber import Subscriber
from tests.servers import PASSWORD

DEADLINE_S = 60.0  # bound on every wait (two kiosks share the two cores)


class Kiosk:
    """`edgepipe kiosk` in a process of its own, looping a video, its page on a free port; stderr collected."""

    def __init__(self, video: Path, gallery: str, *more: str) -> None:
        argv = [sys.executable, "-m", "edgepipe.apps", "kiosk", "--source", str(video), "--loop", "--gallery", gallery,
                "--detector", str(DETECTOR), "--encoder", str(ENCODER), "--detector-provider", "cpu",
                "--encoder-provider", "cpu", "--detector-threads", "1", "--encoder-threads", "1",
                "--serve", "127.0.0.1:0", "--no-show", "--json", *more]
        self.proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.log: list[str] = []
        self.url = ""
        threading.Thread(target=self._read, daemon=True).start()
        wait_until(lambda: bool(self.url) or self.proc.poll() is not None, "the kiosk's page")
        assert self.url, "".join(self.log)

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.log.append(line)
            if "live view at " in line:
                self.url = line.split("live view at ", 1)[1].strip()

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url + "stats.json", timeout=10) as r:
            return json.loads(r.read())

    def gallery(self) -> dict:
        """The page's gallery state ({} before the first frame)."""
        return self.stats().get("gallery", {})

    def stop(self) -> dict:
        """SIGTERM (a clean stop); returns the run's summary."""
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=DEADLINE_S)
        assert self.proc.returncode == 0, "".join(self.log[-20:])
        return json.loads(out)


def wait_until(condition, what: str) -> float:
    return servers.wait_until(condition, what, DEADLINE_S, poll_s=0.02)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """A video of Ada and one unknown visitor; a gallery of Ada; and photos of Ada to enroll."""
    folder = tmp_path_factory.mktemp("fleet")
    made = make_scenario(folder, n_enrolled=1, n_unknown=1)
    photos = enrollment_images(identity_splits()["test"].faces[:1], 3, seed=0)
    _, _, kept = embed_photos(analyzer(), photos)
    paths = [folder / f"ada{i}.png" for i in kept]
    for i, path in zip(kept, paths, strict=True):
        cv2.imwrite(str(path), photos[i])
    export_gallery(folder / "gallery.json", made.gallery)
    return made, paths, folder / "gallery.json"


def server_gallery(url: str, export: Path) -> None:
    """The scenario's gallery on the server, its threshold, without Ada: nobody enrolled."""
    import_gallery(export, url)
    remove_person("Ada", url)


def enroll_ada(url: str, photos: list[Path]) -> None:
    done = subprocess.run([sys.executable, "-m", "edgepipe.apps", "face", "enroll", "--name", "Ada", "--images",
                           *map(str, photos), "--gallery", url, "--detector", str(DETECTOR), "--encoder",
                           str(ENCODER), "--detector-provider", "cpu", "--encoder-provider", "cpu"],
                          cwd=REPO, capture_output=True, text=True, timeout=DEADLINE_S)
    assert done.returncode == 0, done.stderr


def welcomed(summary: dict, name: str) -> int:
    return sum(e["kind"] == "welcome" and e["name"] == name for e in summary["events"])


def test_two_kiosks_follow_an_enrollment_made_by_a_third_process(scenario, pg_url, mosquitto):
    """The first kiosk also publishes its decisions to MQTT: the messages equal the decisions it made."""
    made, photos, export = scenario
    server_gallery(pg_url, export)
    sub = Subscriber(mosquitto.port, "k1/#").start()
    kiosks = [Kiosk(made.video, pg_url, "--publish", f"{mosquitto.url}/k1", "--camera", "door1"),
              Kiosk(made.video, pg_url)]
    try:
        for k in kiosks:
            wait_until(lambda k=k: k.gallery().get("people") == 0, "the kiosk runs")
        enroll_ada(pg_url, photos)
        seen = [wait_until(lambda k=k: k.gallery().get("people") == 1, "Ada reaches the kiosk")
                for k in kiosks]
        print(f"Ada visible at the kiosks {seen[0]:.3f} s and {seen[0] + seen[1]:.3f} s after `face enroll` ended")
        assert all(k.gallery()["online"] for k in kiosks)
        for k in kiosks:  # the looping video brings Ada back
            wait_until(lambda k=k: k.stats().get("verdict") == "Welcome, Ada", "Ada welcomed")
    finally:
        summaries = [k.stop() for k in kiosks]
        sub.wait_for("k1/available", "offline")
        sub.stop()
    decisions = [m.json for m in sub.on("k1/events")]
    assert [(d["type"], d["camera"], d["kind"], d["name"], d["frame"]) for d in decisions] == [
        ("decision", "door1", e["kind"], e["name"], e["frame"]) for e in summaries[0]["events"]]
    assert summaries[0]["published"]["dropped"] == 0 and summaries[1]["published"] is None
    for summary, k in zip(summaries, kiosks, strict=True):
        assert welcomed(summary, "Ada") >= 1, summary["events"]
        assert summary["gallery"]["people"] == 1
        assert not any(PASSWORD in line for line in k.log)
        assert any("1 people updated" in line for line in k.log), "".join(k.log)  # only Ada was read


def test_the_server_killed_and_restarted_under_a_running_kiosk(scenario, own_postgres):
    made, photos, export = scenario
    url = own_postgres.url
    server_gallery(url, export)
    kiosk = Kiosk(made.video, url)
    try:
        wait_until(lambda: kiosk.gallery().get("people") == 0, "the kiosk is up")
        own_postgres.kill()
        wait_until(lambda: "notice" in kiosk.stats(), "the page says the gallery is offline")
        page = kiosk.stats()
        assert "deciding from the cached gallery" in page["notice"] and not page["gallery"]["online"]
        frame = page["frame"]
        wait_until(lambda: kiosk.stats()["frame"] > frame + 50, "frames go on while the server is down")
        assert any("decides from its cached gallery" in line for line in kiosk.log)
        own_postgres.start()
        wait_until(lambda: kiosk.gallery()["online"], "back online")
        assert "notice" not in kiosk.stats()
        assert any("back online" in line and "nothing read" in line for line in kiosk.log), "".join(kiosk.log)
        enroll_ada(url, photos)
        wait_until(lambda: kiosk.gallery().get("people") == 1, "Ada enrolled after the restart")
    finally:
        summary = kiosk.stop()
    assert summary["frames"] > 0 and summary["gallery"]["online"]
