"""`edgepipe detect --publish` against a real throwaway Mosquitto broker: every frame, line crossing, zone entry and
exit and count checked against the JSON lines written in the same run; the subscriber command of docs/events.md;
the broker killed and restarted under a running detect."""

import json
import operator
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from functools import reduce
from pathlib import Path

import pytest

from edgepipe.apps.devservers import ThrowawayMosquitto, free_port
from edgepipe.export.data.detection import make_video
from tests.detect_runs import YOLO, detect
from tests.gallery_data import REPO
from tests.mqtt_subscriber import Subscriber
from tests.servers import PASSWORD, need, need_mosquitto

LINE, ZONE = "mid=320,0,320,480", "left=0,0,320,480"


@pytest.fixture(scope="module")
def crossing_video(tmp_path_factory) -> Path:
    """A generated video whose objects cross the middle line (seed 3, as in test_detect_counting.py)."""
    path = tmp_path_factory.mktemp("crossing") / "cross.mp4"
    make_video(path, n_frames=200, seed=3)
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def in_left_zone(d: dict) -> bool:
    """Whether a detection's box center is in the zone left=0,0,320,480 (the frame's left half)."""
    return (d["xyxy"][0] + d["xyxy"][2]) / 2 <= 320


def test_every_message_agrees_with_the_json_lines(mosquitto, crossing_video, tmp_path):
    jsonl, summary = tmp_path / "run.jsonl", tmp_path / "run.json"
    with Subscriber(mosquitto.port, "d1/#") as sub:
        assert detect("--source", str(crossing_video), "--jsonl", str(jsonl), "--summary", str(summary),
                      "--line", LINE, "--zone", ZONE, "--publish", f"{mosquitto.url}/d1", "--publish-frames",
                      "--camera", "front") == 0
        sub.wait_for("d1/available", "offline")
    records = read_jsonl(jsonl)
    frames = [m.json for m in sub.on("d1/front/detections")]
    assert [f["frame"] for f in frames] == [r["frame"] for r in records] == list(range(200))
    assert all(f["detections"] == r["detections"] and f["camera"] == "front" for f, r in zip(frames, records,
                                                                                           strict=True))
    events = [m.json for m in sub.on("d1/events")]
    crossings = [e for e in events if e["type"] == "line_crossing"]
    for record, before in zip(records[1:], records, strict=False):  # each frame's crossings: its totals' growth
        here = Counter(e["direction"] for e in crossings if e["frame"] == record["frame"])
        grown = {d: n - before["lines"]["mid"][d] for d, n in record["lines"]["mid"].items()}
        assert {d: here[d] for d in grown} == grown, record["frame"]
    assert len(crossings) == sum(records[-1]["lines"]["mid"].values()) >= 2

    by_frame = {r["frame"]: {d["track_id"]: d for d in reversed(r["detections"])} for r in records}  # best box wins
    inside: set[int] = set()
    zone_events = [e for e in events if e["type"].startswith("zone_")]
    for e in zone_events:
        seen = by_frame[e["frame"]].get(e["track_id"])
        if e["type"] == "zone_enter":
            assert e["track_id"] not in inside and seen is not None and in_left_zone(seen)
            inside.add(e["track_id"])
        else:
            assert e["track_id"] in inside and (e["lost"] or not in_left_zone(seen))
            inside.remove(e["track_id"])
    last = records[-1]
    assert {t for t, d in by_frame[last["frame"]].items() if in_left_zone(d)} <= inside
    assert len(zone_events) >= 2

    *_, before, counts = [m.json for m in sub.on("d1/front/counts")]  # retained, once a second of video
    assert counts["frame"] == last["frame"] and counts["lines"] == last["lines"] and counts["zones"] == last["zones"]
    assert counts["objects"] == dict(Counter(d["class_name"] for d in last["detections"]))
    since = [Counter(d["class_name"] for d in r["detections"]) for r in records if r["frame"] > before["frame"]]
    assert counts["peak"] == dict(reduce(operator.or_, since, Counter()))  # the most in one frame since then
    for label in counts["objects"]:
        assert int(sub.on(f"d1/front/{label}")[-1].text) == counts["objects"][label]
    published = json.loads(summary.read_text())["published"]
    assert (published["dropped"], published["unsent"]) == (0, 0)
    assert published["published"] == len(sub.messages)


def test_the_documented_subscriber_command(mosquitto, crossing_video, tmp_path):
    """docs/events.md: mosquitto_sub -h HOST -p PORT -t 'PREFIX/#' -v prints 'TOPIC PAYLOAD' lines."""
    need("mosquitto_sub (Debian's mosquitto-clients)", bool(shutil.which("mosquitto_sub")))
    command = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mosquitto.port), "-t", "d2/#", "-v"]
    sub = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(sub.stdout), daemon=True)
    reader.start()
    try:
        while not any(line.startswith("d2/ready ") for line in lines):  # it listens once it sees a message
            subprocess.run(["mosquitto_pub", "-p", str(mosquitto.port), "-t", "d2/ready", "-m", "1"], check=True)
            time.sleep(0.2)
        assert detect("--source", str(crossing_video), "--line", LINE, "--summary", str(tmp_path / "s.json"),
                      "--publish", f"{mosquitto.url}/d2") == 0
        time.sleep(1.0)
    finally:
        sub.terminate()
        sub.wait(timeout=30)
    reader.join(timeout=10)
    events = [json.loads(line.split(" ", 1)[1]) for line in lines if line.startswith("d2/events ")]
    crossed = Counter(e["direction"] for e in events if e["type"] == "line_crossing")
    want = json.loads((tmp_path / "s.json").read_text())["crossings"]["mid"]
    assert {d: crossed[d] for d in ("left_to_right", "right_to_left")} == {d: want[d] for d in
                                                                           ("left_to_right", "right_to_left")}
    assert "d2/available online\n" in lines and "d2/available offline\n" in lines


def test_the_broker_killed_and_restarted_under_a_running_detect(own_mosquitto, crossing_video):
    argv = [sys.executable, "-m", "edgepipe.apps", "detect", "--model", str(YOLO), "--provider", "cpu", "--no-show",
            "--source", str(crossing_video), "--loop", "--line", LINE, "--publish", f"{own_mosquitto.url}/d3",
            "--publish-frames", "--publish-queue", "50", "--json"]
    with Subscriber(own_mosquitto.port, "d3/#") as sub:
        run = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            sub.wait_for("d3/available", "online")
            count = len(sub.wait_for("d3/cross/detections", count=20))  # the camera: the video's name
            own_mosquitto.kill()
            time.sleep(2.0)  # detect goes on: its queue fills, the oldest messages are dropped
            own_mosquitto.start()
            sub.wait_for("d3/available", "online", count=2)
            after = sub.wait_for("d3/cross/detections", count=count + 60)
        finally:
            run.send_signal(signal.SIGTERM)
            out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    published = json.loads(out)["published"]
    assert published["dropped"] > 0 and published["reconnects"] == 1
    told = sum(m.json.get("dropped", 0) for m in sub.messages if m.text.startswith("{"))
    assert told == published["dropped"]  # every drop reported in the next message sent
    assert "went away" in err and "is back" in err
    frames = [m.json["frame"] for m in after]
    assert frames == sorted(frames)  # in order, with a gap where the messages were dropped


def test_broker_errors_are_one_line_before_any_output(capsys, crossing_video, tmp_path):
    """A bad URL and a wrong password: exit 2; a broker that does not answer: exit 1; the JSON lines file is never
    created, the password never shown."""
    need_mosquitto()
    out = tmp_path / "never.jsonl"
    with ThrowawayMosquitto(users={"cam": PASSWORD}) as broker:
        for url, code, words in (
            (f"mqtt://cam:{PASSWORD}@127.0.0.1:{broker.port}/a/#", 2, "no ? or # in an MQTT URL"),
            (f"mqtt://cam:{PASSWORD}@127.0.0.1:{broker.port}/a/+", 2, "without + or #"),
            (f"mqtt://cam:not-{PASSWORD}@127.0.0.1:{broker.port}/d4", 2, "refused the connection"),
            (f"mqtt://cam:{PASSWORD}@127.0.0.1:{free_port()}/d4", 1, "is unreachable"),
        ):
            assert detect("--source", str(crossing_video), "--jsonl", str(out), "--publish", url) == code
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and words in err and PASSWORD not in err, err
            assert not out.exists()
