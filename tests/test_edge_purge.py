"""Purge across TWO nginx edges (origin/ports/cdn_nginx.py), one of them down at purge time."""
from __future__ import annotations

import json
import time

import pytest
import requests

from origin.config import Settings
from origin.ports.cdn_nginx import EdgePurger
from origin.wiring import open_cdn
from tests import images
from tests.servers import start_edge, start_edge_origin, stop
from tests.test_edge_units import BROWSERS

pytestmark = pytest.mark.slow
VARIANTS = [("original", None), ("w300.webp", None), ("sq150.avif", None), ("sm64.png", None),
            ("w600", "chrome"), ("w600", "safari15"), ("w600", "curl"), ("auto", "curl"), ("auto.webp", None),
            ("placeholder", None),
            ("card.webp", None), ("content.jpeg", None), ("card", "chrome"), ("card", "curl")]  # default presets


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    server = start_edge_origin(tmp_path_factory.mktemp("purge") / "var", workers=2)
    yield server
    stop(server.proc)


@pytest.fixture
def edges(origin, tmp_path):
    settings = Settings.from_env(origin.env)
    port = int(origin.url.rsplit(":", 1)[1])
    pair = [start_edge(settings, port, tmp_path / name) for name in ("a", "b")]
    yield pair
    for edge in pair:
        stop(edge.proc)


def ingest(origin, count: int) -> list[str]:
    result = origin.ingest(*images.PHOTOS[:count])
    assert result.returncode == 0, result.stderr
    return [json.loads(line)["id"] for line in result.stdout.splitlines()]


def statuses(edge, image_id) -> list[str]:
    answers = []
    for variant, browser in VARIANTS:
        headers = {"Accept": BROWSERS[browser][0]} if browser else {}
        resp = requests.get(f"{edge.url}/images/{image_id}/{variant}", headers=headers, timeout=60)
        assert resp.status_code == 200
        answers.append(resp.headers["X-Cache-Status"])
    return answers


def restart(edge, origin):
    """The same nginx (port, prefix, cache on disk) started again."""
    port = int(edge.url.rsplit(":", 1)[1])
    return start_edge(Settings.from_env(origin.env), int(origin.url.rsplit(":", 1)[1]), edge.prefix, port=port)


def wait_until(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


HIT, MISS = ["HIT"] * len(VARIANTS), ["MISS"] * len(VARIANTS)


def test_purge_with_one_edge_down_is_retried_by_the_background_thread(origin, edges, tmp_path):
    a, b = edges
    purged, kept = ingest(origin, 2)
    for edge in (a, b):
        for image_id in (purged, kept):
            statuses(edge, image_id)
            assert statuses(edge, image_id) == HIT
    stop(b.proc)
    purger = EdgePurger([a.url, b.url], tmp_path / "cdn", retry_seconds=0.3)
    try:
        purger.purge(purged)
        assert [(p["url"], p["image_id"]) for p in purger.pending()] == [(b.url, purged)]
        assert (tmp_path / "cdn" / "purge-pending.json").exists()  # durable: survives a restart of the origin
        assert statuses(a, purged) == MISS and statuses(a, kept) == HIT
        time.sleep(1.0)  # a few retry passes fail while b is down; nothing is dropped
        assert len(purger.pending()) == 1 and purger.pending()[0]["attempts"] > 1
        b = edges[1] = restart(b, origin)
        assert wait_until(lambda: not purger.pending())
        assert statuses(b, purged) == MISS and statuses(b, kept) == HIT
    finally:
        purger.close()


def test_pending_purges_are_retried_on_the_next_purge(origin, edges, tmp_path):
    a, b = edges
    first, second = ingest(origin, 2)
    for image_id in (first, second):
        statuses(b, image_id)
    stop(b.proc)
    purger = EdgePurger([a.url, b.url], tmp_path / "cdn", start=False)
    purger.purge(first)
    assert len(purger.pending()) == 1
    b = edges[1] = restart(b, origin)
    assert statuses(b, first) == HIT  # the cache on disk survived the restart
    # a new purger (as after an origin restart) reads the same durable list
    EdgePurger([a.url, b.url], tmp_path / "cdn", start=False).purge(second)
    assert purger.pending() == []
    assert statuses(b, first) == MISS and statuses(b, second) == MISS


def test_open_cdn_from_settings(origin, tmp_path):
    assert open_cdn(Settings(data_dir=tmp_path)) is None
    cdn = open_cdn(Settings(data_dir=tmp_path, purge_urls="http://127.0.0.1:1, http://127.0.0.1:2/"))
    try:
        assert cdn.urls == ("http://127.0.0.1:1", "http://127.0.0.1:2") and cdn.state_dir == tmp_path / "cdn"
    finally:
        cdn.close()
