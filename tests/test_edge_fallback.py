"""A deferred format through the real nginx edge: the fast-format answer is cached briefly under the
negotiated key, then replaced by the asked format, cached for a year; no client waits for either."""
from __future__ import annotations

import json
import time

import pytest
import requests

from origin.config import Settings
from tests import images
from tests.servers import start_edge, start_edge_origin, stop

pytestmark = pytest.mark.slow
CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("edge-fallback")
    # a budget that AVIF at w600 exceeds and WebP fits; fallbacks live 1 s
    env = {"IMAGEHOST_MISS_BUDGET_MS": "40", "IMAGEHOST_FALLBACK_MAX_AGE": "1"}
    origin = start_edge_origin(root / "var", env, workers=1)
    edge = start_edge(Settings.from_env(origin.env), int(origin.url.rsplit(":", 1)[1]), root / "edge")
    result = origin.ingest(images.PHOTOS[0])
    assert result.returncode == 0, result.stderr
    yield origin, edge, json.loads(result.stdout.splitlines()[0])["id"]
    stop(edge.proc)
    stop(origin.proc)


def get(edge, path, accept=CHROME):
    return requests.get(edge.url + path, headers={"Accept": accept}, timeout=60)


def test_the_fallback_is_cached_briefly_then_the_asked_format_for_a_year(stack):
    origin, edge, image_id = stack
    path = f"/images/{image_id}/w600"
    first = get(edge, path)
    assert (first.status_code, first.headers["X-Cache-Status"]) == (200, "MISS")
    assert first.headers["Content-Type"] == "image/webp"
    assert first.headers["Cache-Control"] == "public, max-age=1, stale-while-revalidate=6"
    again = get(edge, path)
    assert (again.headers["X-Cache-Status"], again.headers["Content-Type"]) == ("HIT", "image/webp")
    # another class is its own entry: WebP clients get the stored WebP, for a year
    webp = get(edge, path, "image/webp,*/*")
    assert webp.headers["X-Cache-Status"] == "MISS" and webp.headers["Cache-Control"].endswith("immutable")
    deadline = time.monotonic() + 30
    seen = []
    while True:  # after a second: served stale once while nginx fetches the AVIF behind it
        time.sleep(0.3)
        resp = get(edge, path)
        assert resp.status_code == 200
        seen.append((resp.headers["X-Cache-Status"], resp.headers["Content-Type"]))
        if resp.headers["Content-Type"] == "image/avif" and resp.headers["X-Cache-Status"] == "HIT":
            break
        assert time.monotonic() < deadline, seen
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert images.size(resp.content) == images.size(first.content)
    assert all(status in ("HIT", "STALE", "UPDATING", "EXPIRED", "REVALIDATED") for status, _ in seen), seen
    assert ("STALE", "image/webp") in seen  # nobody waited for the refresh
    time.sleep(1.5)
    assert get(edge, path).headers["X-Cache-Status"] == "HIT"  # a year, now
