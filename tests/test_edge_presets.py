"""Presets at the nginx edge in front of a real gunicorn origin: negotiated like w{n}, refused at the edge
when not configured, and a changed definition never answered with the old bytes after a restart,
though the cache on disk survives it."""
from __future__ import annotations

import json

import pytest
import requests

from origin.config import Settings
from tests import images
from tests.servers import start_edge, start_edge_origin, stop
from tests.test_edge_units import BROWSERS

pytestmark = pytest.mark.slow
BEFORE = "card=fill 800x450 smart, square=fill 300x300 centre"
AFTER = "card=fill 600x600 smart, square=fill 300x300 centre"


def get(url, **headers):
    return requests.get(url, headers=headers, timeout=60)


@pytest.fixture
def stack(tmp_path):
    origin = start_edge_origin(tmp_path / "var", {"IMAGEHOST_PRESETS": BEFORE}, workers=1)
    edge = start_edge(Settings.from_env(origin.env), int(origin.url.rsplit(":", 1)[1]), tmp_path / "edge")
    result = origin.ingest(images.PHOTOS[2])
    assert result.returncode == 0, result.stderr
    state = {"origin": origin, "edge": edge, "id": json.loads(result.stdout)["id"]}
    yield state
    stop(state["edge"].proc)
    stop(state["origin"].proc)


def test_negotiated_preset_classes_share_entries(stack):
    edge, image_id = stack["edge"], stack["id"]
    seen = {}
    for name in ("chrome", "firefox", "safari17", "safari15", "firefox_old", "curl"):
        accept, expected = BROWSERS[name]
        resp = get(f"{edge.url}/images/{image_id}/card", Accept=accept)
        assert resp.status_code == 200 and resp.headers["Content-Type"] == f"image/{expected}", name
        assert images.size(resp.content) == (800, 450) and resp.headers["Vary"] == "Accept"
        seen.setdefault(expected, []).append(resp.headers["X-Cache-Status"])
    assert seen == {"avif": ["MISS", "HIT", "HIT"], "webp": ["MISS", "HIT"], "jpeg": ["MISS"]}
    explicit = [get(f"{edge.url}/images/{image_id}/square.png").headers["X-Cache-Status"] for _ in range(2)]
    assert explicit == ["MISS", "HIT"]


@pytest.mark.parametrize("variant", ["poster", "poster.webp", "card.bmp", "card.", "Card", "card.webp.webp",
                                     "hero", "card%0A"])
def test_what_is_not_a_configured_preset_is_refused_at_the_edge(stack, variant):
    edge, image_id = stack["edge"], stack["id"]
    resp = get(f"{edge.url}/images/{image_id}/{variant}")
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request", resp.text
    assert "X-Request-Id" not in resp.headers  # answered by nginx: the origin never saw it
    direct = get(f"{stack['origin'].url}/images/{image_id}/{variant}")
    assert direct.status_code == 400 and direct.json()["error"] == "invalid_request"


def test_a_changed_definition_is_a_new_entry_after_a_restart(stack, tmp_path):
    origin, edge, image_id = stack["origin"], stack["edge"], stack["id"]
    urls = [f"{edge.url}/images/{image_id}/card.webp", f"{edge.url}/images/{image_id}/card"]
    control = f"{edge.url}/images/{image_id}/square.webp"
    for url in urls + [control]:
        get(url, Accept="image/webp")
        resp = get(url, Accept="image/webp")
        assert resp.headers["X-Cache-Status"] == "HIT" and images.size(resp.content) in ((800, 450), (300, 300))
    stop(edge.proc)
    stop(origin.proc)
    port = int(origin.url.rsplit(":", 1)[1])
    origin = stack["origin"] = start_edge_origin(origin.data_dir, {"IMAGEHOST_PRESETS": AFTER}, workers=1, port=port)
    edge_port = int(edge.url.rsplit(":", 1)[1])
    edge = stack["edge"] = start_edge(Settings.from_env(origin.env), port, edge.prefix, port=edge_port)
    unchanged = get(control, Accept="image/webp")
    assert unchanged.headers["X-Cache-Status"] == "HIT"  # the cache on disk survived the restart
    for url in urls:
        resp = get(url, Accept="image/webp")
        assert resp.status_code == 200 and resp.headers["X-Cache-Status"] == "MISS", url
        assert images.size(resp.content) == (600, 600), url
    content = next((origin.data_dir / "store" / "images").iterdir()).name
    stored = sorted(p.name for p in (origin.data_dir / "store" / "images" / content).glob("p-card-*"))
    digests = [Settings(presets=text).named_presets.get("card").digest for text in (BEFORE, AFTER)]
    assert stored == sorted([f"p-card-{digests[0]}.webp", f"p-card-{digests[1]}.webp"])
