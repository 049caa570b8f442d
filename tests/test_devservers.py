"""`edgepipe dev postgres` and `edgepipe dev mqtt`, the README's two commands for trying a fleet: each prints a URL
that works (a gallery enrolled on the one, a message through the other) and stops cleanly on Ctrl-C or SIGTERM,
its data deleted and its port closed."""

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgepipe.apps.face.gallery import EncoderId, open_gallery
from edgepipe.apps.stream.mqtt import MqttPublisher, MqttTarget
from tests.gallery_data import REPO
from tests.mqtt_subscriber import Subscriber
from tests.servers import need_mosquitto, need_postgres


def start(server: str) -> tuple[subprocess.Popen, str, Path]:
    """`edgepipe dev SERVER` in a process of its own: (the process, the URL it printed, its data folder)."""
    proc = subprocess.Popen([sys.executable, "-m", "edgepipe.apps", "dev", server], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    found = re.match(r"(\w+) running at (\S+) \(data in (\S+)\); Ctrl-C stops it", line)
    if not found:
        proc.kill()
        raise AssertionError(f"{line!r} {proc.communicate()[1]}")
    return proc, found[2], Path(found[3])


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_dev_postgres_serves_a_gallery_until_stopped(stop, tmp_path):
    need_postgres()
    proc, url, folder = start("postgres")
    try:
        encoder = EncoderId("ab" * 32, 4, "enc.onnx")
        with open_gallery(url, encoder) as db:
            db.enroll("Ann", np.ones((2, 4), np.float32))
        with open_gallery(url) as db:
            assert [(p.name, p.n_embeddings) for p in db.people()] == [("Ann", 2)]
        assert folder.is_dir()
    finally:
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"{folder} deleted" in out and not folder.exists()
    assert not port_open(int(url.rsplit(":", 1)[1].split("/")[0]))


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_dev_mqtt_carries_messages_until_stopped(stop):
    need_mosquitto()
    proc, url, folder = start("mqtt")
    port = int(url.rsplit(":", 1)[1])
    try:
        with Subscriber(port, "try/#") as sub:
            publisher = MqttPublisher(MqttTarget.parse(url + "/try")).start()
            publisher.publish("events", {"type": "hello"})
            publisher.close()
            assert sub.wait_for("try/events")[0].json == {"type": "hello"}
    finally:
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"{folder} deleted" in out and not folder.exists() and not port_open(port)
