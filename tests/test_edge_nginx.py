"""The nginx edge for real: gunicorn origin + nginx on loopback ports, images ingested by the CLI.

Cache key (path + format class), X-Cache-Status, stale serving, hotlink
protection on misses and hits, loopback-only purge.
"""
from __future__ import annotations

import http.client
import json
import time

import pytest
import requests

from origin.config import Settings
from tests import images
from tests.servers import start_edge, start_edge_origin, stop
from tests.test_edge_units import BROWSERS

pytestmark = pytest.mark.slow
GOOD = "https://good.example/gallery"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("edge")
    env = {"IMAGEHOST_REFERERS": "good.example,*.friends.example",
           "IMAGEHOST_ACCESS_LOG": str(root / "origin-access.log")}
    origin = start_edge_origin(root / "var", env, workers=2)
    edge = start_edge(Settings.from_env(origin.env), int(origin.url.rsplit(":", 1)[1]), root / "edge")
    result = origin.ingest(images.PHOTOS[0], images.PHOTOS[1])
    assert result.returncode == 0, result.stderr
    ids = [json.loads(line)["id"] for line in result.stdout.splitlines()]
    yield origin, edge, ids
    stop(edge.proc)
    stop(origin.proc)


def get(edge, path, **headers):
    return requests.get(edge.url + path, headers={k.replace("_", "-"): v for k, v in headers.items()}, timeout=60)


def origin_requests(origin, settled_on: str = "") -> int:
    """Lines in the origin's access log (gunicorn writes one just after answering: wait for `settled_on`)."""
    path = origin.data_dir.parent / "origin-access.log"
    deadline = time.monotonic() + 5
    while True:
        text = path.read_text() if path.exists() else ""
        if settled_on in text or time.monotonic() > deadline:
            return len(text.splitlines())
        time.sleep(0.05)


def test_miss_then_hit(stack):
    origin, edge, ids = stack
    first = get(edge, f"/images/{ids[0]}/w300.webp")
    second = get(edge, f"/images/{ids[0]}/w300.webp")
    assert first.status_code == second.status_code == 200
    assert (first.headers["X-Cache-Status"], second.headers["X-Cache-Status"]) == ("MISS", "HIT")
    assert first.content == second.content and images.size(second.content)[0] == 300
    assert second.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert second.headers["ETag"] == first.headers["ETag"]


def test_head_and_conditional_requests_from_the_cache(stack):
    origin, edge, ids = stack
    path = f"/images/{ids[0]}/w150.jpeg"
    etag = get(edge, path).headers["ETag"]
    before = origin_requests(origin, settled_on=path)
    again = get(edge, path, If_None_Match=etag)
    assert again.status_code == 304 and again.headers["X-Cache-Status"] == "HIT"
    head = requests.head(edge.url + path, timeout=10)
    assert head.status_code == 200 and head.headers["X-Cache-Status"] == "HIT"
    assert origin_requests(origin) == before


def test_cache_key_is_the_format_class_not_the_accept_header(stack):
    origin, edge, ids = stack
    path = f"/images/{ids[1]}/w600"
    seen = {}
    for name in ("chrome", "firefox", "safari17", "safari15", "firefox_old", "curl", "none", "avif_refused"):
        accept, expected = BROWSERS[name]
        resp = get(edge, path, **({"Accept": accept} if accept else {}))
        assert resp.status_code == 200
        assert resp.headers["Content-Type"] == f"image/{expected}", name
        assert resp.headers["Vary"] == "Accept"
        seen.setdefault(expected, []).append((resp.headers["X-Cache-Status"], resp.content))
    for fmt, answers in seen.items():
        assert [status for status, _ in answers] == ["MISS"] + ["HIT"] * (len(answers) - 1), fmt
        assert len({body for _, body in answers}) == 1
    assert len({answers[0][1] for answers in seen.values()}) == 3


def test_the_origin_sees_a_canonical_accept(stack):
    """Two Accept headers cannot smuggle AVIF bytes into the jpeg entry."""
    origin, edge, ids = stack
    conn = http.client.HTTPConnection(edge.url.removeprefix("http://"), timeout=60)
    conn.putrequest("GET", f"/images/{ids[1]}/sq150")
    conn.putheader("Accept", "text/html")
    conn.putheader("Accept", "image/avif")
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    assert resp.status == 200 and resp.getheader("Content-Type") == "image/jpeg"
    assert get(edge, f"/images/{ids[1]}/sq150", Accept="*/*").content == body


def test_query_strings_do_not_split_the_cache(stack):
    origin, edge, ids = stack
    path = f"/images/{ids[0]}/sq64.avif"
    assert get(edge, path + "?utm_source=x").headers["X-Cache-Status"] == "MISS"
    for query in ("", "?utm_source=y", "?v=2&w=9999"):
        resp = get(edge, path + query)
        assert resp.headers["X-Cache-Status"] == "HIT" and images.size(resp.content) == (64, 64)


def test_referer_allow_list_on_miss_and_hit(stack):
    origin, edge, ids = stack
    path = f"/images/{ids[0]}/w150.webp"
    before = origin_requests(origin)
    refused = get(edge, path, Referer="https://evil.test/page")  # not cached yet: the origin is spared
    assert refused.status_code == 403 and refused.json()["error"] == "hotlink_refused"
    assert refused.headers["Content-Type"] == "application/json"
    assert origin_requests(origin) == before
    assert get(edge, path, Referer=GOOD).headers["X-Cache-Status"] == "MISS"
    for referer in ("https://cdn.friends.example/x", "http://good.example:8080/", None):  # empty: allowed here
        resp = get(edge, path, **({"Referer": referer} if referer else {}))
        assert resp.status_code == 200 and resp.headers["X-Cache-Status"] == "HIT", referer
    for referer in ("https://evil.test/", "https://friends.example/", "https://good.example.evil.test/"):
        resp = get(edge, path, Referer=referer)  # cached now, still refused
        assert resp.status_code == 403 and resp.json()["error"] == "hotlink_refused", referer
    assert origin_requests(origin, settled_on=path) == before + 1


def test_the_origin_checks_the_referer_too(stack):
    origin, edge, ids = stack
    resp = requests.get(f"{origin.url}/images/{ids[0]}/w150.webp", headers={"Referer": "https://evil.test/"},
                        timeout=30)
    assert resp.status_code == 403 and resp.json()["error"] == "hotlink_refused"


def test_errors_pass_through_uncached(stack):
    origin, edge, ids = stack
    for _ in range(2):  # the origin's answer for an id it does not know (the edge cannot tell)
        resp = get(edge, "/images/NoSuchImage1/w300.webp")
        assert resp.status_code == 404 and resp.headers["X-Cache-Status"] == "MISS"
    assert get(edge, "/healthz").json()["status"] == "ok"


def test_purge_is_loopback_only(stack):
    origin, edge, ids = stack
    host, port = edge.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10, source_address=("127.0.0.2", 0))
    conn.request("POST", f"/purge/images/{ids[0]}")
    assert conn.getresponse().status == 403
    purged = requests.post(f"{edge.url}/purge/images/{ids[0]}", timeout=10)
    assert purged.status_code == 200 and purged.json()["keys"] > 50
    assert get(edge, f"/images/{ids[0]}/w300.webp").headers["X-Cache-Status"] == "MISS"


def test_stale_is_served_when_the_origin_is_down(tmp_path):
    origin = start_edge_origin(tmp_path / "var", workers=1)
    edge = start_edge(Settings.from_env(origin.env), int(origin.url.rsplit(":", 1)[1]), tmp_path / "edge",
                      edge_ttl=1)
    try:
        image_id = json.loads(origin.ingest(images.PHOTOS[2]).stdout)["id"]
        fresh = get(edge, f"/images/{image_id}/w300", Accept=BROWSERS["chrome"][0])
        assert fresh.headers["X-Cache-Status"] == "MISS"
        stop(origin.proc)
        time.sleep(1.5)
        stale = get(edge, f"/images/{image_id}/w300", Accept=BROWSERS["firefox"][0])
        assert stale.status_code == 200 and stale.headers["X-Cache-Status"] == "STALE"
        assert stale.content == fresh.content
        down = get(edge, f"/images/{image_id}/w600.webp")
        assert down.status_code == 503 and down.json()["error"] == "origin_unavailable"
    finally:
        stop(edge.proc)
        stop(origin.proc)
