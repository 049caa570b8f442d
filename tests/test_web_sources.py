"""The browser view of a run with several sources: a grid at /, each source's page, stream, frame and stats under
/source/NAME/, over real HTTP and in headless Chromium."""

from __future__ import annotations

import json
import re
import threading

import pytest

from edgepipe.apps.stream.web import LiveView
from edgepipe.postprocess.errors import UserError
from tests.browser import dump_dom, require_chromium
from tests.test_web import get, mark_of, marked_frame

NAMES = ("front door", "yard")  # a space: names travel quoted in URLs


@pytest.fixture
def view():
    with LiveView("127.0.0.1", 0, title="site", sources=NAMES) as v:
        yield v


def test_each_source_has_its_own_frame_and_stats(view):
    view.publish(marked_frame(3), {"fps": 10.0}, "front door")
    view.publish(marked_frame(7), {"fps": 20.0}, "yard")
    status, kind, body = get(view, "/source/front%20door/frame.jpg")
    assert (status, kind, mark_of(body)) == (200, "image/jpeg", 3)
    assert mark_of(get(view, "/source/yard/frame.jpg")[2]) == 7
    assert json.loads(get(view, "/source/yard/stats.json")[2]) == {"fps": 20.0}
    page = get(view, "/source/yard/")[2].decode()
    assert "<title>site: yard</title>" in page and 'src="stream.mjpg"' in page


def test_the_grid_links_every_source_and_unknown_paths_are_404(view):
    status, kind, body = get(view, "/")
    page = body.decode()
    assert status == 200 and kind.startswith("text/html")
    assert page.count("<figure") == 2 and 'src="source/front%20door/stream.mjpg"' in page
    assert 'href="source/yard/"' in page
    for path in ("/stats.json", "/source/nobody/stats.json", "/source/yard/other", "/source/yard"):
        assert get(view, path)[0] == 404, path


def test_publishing_for_a_source_the_view_does_not_have_is_refused(view):
    with pytest.raises(UserError, match="source 'gate' is not one of this view's: 'front door', 'yard'"):
        view.publish(marked_frame(1), {}, "gate")


def test_grid_in_headless_chromium(view):
    require_chromium()
    stop = threading.Event()

    def publish_until_stopped() -> None:
        while not stop.is_set():
            view.publish(marked_frame(1), {"fps": 12.0, "counts": {"circle": 1}}, "front door")
            view.publish(marked_frame(2), {"fps": 25.0, "counts": {"square": 2}}, "yard")
            stop.wait(0.05)

    publisher = threading.Thread(target=publish_until_stopped, daemon=True)
    publisher.start()
    try:
        dom = dump_dom(view.url, timeout_s=90)
    finally:
        stop.set()
        publisher.join()
    assert re.search(r'class="fps">12\.0 FPS<', dom) and re.search(r'class="fps">25\.0 FPS<', dom), dom[-1500:]
    assert "circle: 1" in dom and "square: 2" in dom
    assert sorted(re.findall(r'<img src="source/([^/"]+)/stream.mjpg"', dom)) == ["front%20door", "yard"]
