"""The MQTT publisher against a real throwaway Mosquitto broker: URLs, messages in order at QoS 1, the online /
offline status with the last will of a killed process, the broker killed and restarted (a bounded queue, the
oldest dropped and reported), a wrong password and a broker that does not answer, never showing the password."""

import signal
import subprocess
import sys
import time

import pytest

from edgepipe.apps.devservers import ThrowawayMosquitto, free_port
from edgepipe.apps.servers import Unreachable
from edgepipe.apps.stream.events import camera_name, topic_level
from edgepipe.apps.stream.mqtt import MqttPublisher, MqttTarget
from edgepipe.postprocess.errors import UserError
from tests.gallery_data import REPO
from tests.mqtt_subscriber import Subscriber
from tests.servers import PASSWORD, need_mosquitto


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("mqtt://broker", MqttTarget("broker", 1883, "edgepipe")),  # the defaults
        ("mqtt://10.0.0.2:1884/site/door1", MqttTarget("10.0.0.2", 1884, "site/door1")),
        ("mqtt://ha:p%40ss@broker/", MqttTarget("broker", 1883, "edgepipe", "ha", "p@ss")),  # quoted password
    ],
)
def test_urls_name_the_broker_and_the_prefix(url, target):
    assert MqttTarget.parse(url) == target


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://broker/x", "takes mqtt://HOST"),
        ("mqtt:///edgepipe", "takes mqtt://HOST"),  # no host
        (f"mqtt://u:{PASSWORD}@broker:99999/x", "port must be a number in 1..65535"),
        (f"mqtt://u:{PASSWORD}@broker/a/+/b", r"without \+ or #"),
        ("mqtt://broker/a//b", "empty levels"),
        (f"mqtt://u:{PASSWORD}@broker/x?qos=2", r"no \? or # in an MQTT URL"),
        (f"mqtt://u:{PASSWORD}@broker/x/#", r"no \? or # in an MQTT URL"),
    ],
)
def test_bad_urls_are_refused_without_the_password(url, error):
    with pytest.raises(UserError, match=error) as info:
        MqttTarget.parse(url)
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize(
    ("source", "name"),
    [("0", "camera0"), ("/videos/front door.mp4", "front_door"), ("rtsp://cam7.local:554/live", "cam7.local"),
     ("shots/*.jpg", "_")],
)
def test_camera_names_come_from_the_source(source, name):
    assert camera_name(source) == name
    assert topic_level("a/b+c#d e") == "a_b_c_d_e"


def test_messages_arrive_in_order_with_the_status_topic(mosquitto):
    with Subscriber(mosquitto.port, "t1/#") as sub:
        publisher = MqttPublisher(MqttTarget.parse(mosquitto.url + "/t1")).start()
        assert sub.wait_for("t1/available", "online")[0].retain is False  # live, not the retained copy
        for i in range(500):
            publisher.publish("events", {"i": i})
        publisher.publish("door/person", 3, retain=True)
        stats = publisher.close()
        assert (stats.published, stats.dropped, stats.unsent) == (503, 0, 0)  # online, 500, 1, offline
        events = sub.wait_for("t1/events", count=500)
        assert [m.json["i"] for m in events] == list(range(500))
        sub.wait_for("t1/available", "offline")
    with Subscriber(mosquitto.port, "t1/#") as late:  # a subscriber that comes later gets the retained state
        assert late.wait_for("t1/door/person", "3")[0].retain
        assert late.wait_for("t1/available")[-1].text == "offline"


HOLD = """
import sys, time
from edgepipe.apps.stream.mqtt import MqttPublisher, MqttTarget
MqttPublisher(MqttTarget.parse(sys.argv[1])).start()
print("ready", flush=True)
time.sleep(600)
"""


def test_the_last_will_says_offline_when_the_process_dies(mosquitto):
    with Subscriber(mosquitto.port, "t2/#") as sub:
        child = subprocess.Popen([sys.executable, "-c", HOLD, mosquitto.url + "/t2"], cwd=REPO,
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ready"
            sub.wait_for("t2/available", "online")
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        sub.wait_for("t2/available", "offline")  # from the broker: the process never said it


def test_the_broker_killed_and_restarted_under_a_publisher(own_mosquitto: ThrowawayMosquitto):
    publisher = MqttPublisher(MqttTarget.parse(own_mosquitto.url + "/t3"), queue_size=20).start()
    with Subscriber(own_mosquitto.port, "t3/#") as sub:
        publisher.publish("events", {"i": -1})
        assert [m.json["i"] for m in sub.wait_for("t3/events")] == [-1]
        own_mosquitto.kill()
    time.sleep(1.5)  # the publisher sees the connection drop; its first try to reconnect (after 1 s) fails
    for i in range(50):  # 50 into a queue of 20: the 30 oldest are dropped
        publisher.publish("events", {"i": i})
    own_mosquitto.start()
    # A new subscriber, subscribed before the publisher's next try (2 s after its first): nothing sent is missed.
    with Subscriber(own_mosquitto.port, "t3/#") as sub:
        got = sub.wait_for("t3/events", count=20)
        assert [m.json["i"] for m in got] == list(range(30, 50))
        assert got[0].json["dropped"] == 30 and "dropped" not in got[1].json  # told once, in the next message
        stats = publisher.close()
    assert (stats.dropped, stats.unsent, stats.reconnects) == (30, 0, 1)
    assert "30 dropped while the broker was away" in stats.lines()[0]


def test_a_wrong_password_is_refused_and_a_silent_broker_is_unreachable():
    need_mosquitto()
    with ThrowawayMosquitto(users={"cam": PASSWORD}) as broker:
        good = MqttTarget.parse(f"mqtt://cam:{PASSWORD}@127.0.0.1:{broker.port}/t4")
        MqttPublisher(good).start().close()
        with pytest.raises(UserError, match=r"refused the connection .*check the user and password") as info:
            MqttPublisher(MqttTarget.parse(f"mqtt://cam:wrong-{PASSWORD}@127.0.0.1:{broker.port}/t4")).start()
        assert PASSWORD not in str(info.value) and "mqtt://cam@127.0.0.1" in str(info.value)
    with pytest.raises(Unreachable, match=r"is unreachable .*is it running"):
        MqttPublisher(MqttTarget.parse(f"mqtt://cam:{PASSWORD}@127.0.0.1:{free_port()}/t4")).start()
