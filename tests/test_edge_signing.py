"""Signed URLs required: the nginx edge refuses before its cache (the origin sees nothing), the origin
refuses again when hit directly, keys rotate, and POST /v1/sign issues the URLs."""
from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from origin.config import Settings
from origin.security.signing import SigningKeys, sign_path
from tests import images
from tests.servers import free_port, start_edge, start_edge_origin, stop

pytestmark = pytest.mark.slow
GOOD = {"Referer": "https://good.example/page"}
API = {"Authorization": "Bearer test-key"}
NEW, OLD = SigningKeys.parse("k2:new-secret"), SigningKeys.parse("k1:old-secret")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("signed")
    edge_port = free_port()
    env = {
        "IMAGEHOST_SIGNING_REQUIRED": "1",
        "IMAGEHOST_SIGNING_KEYS": "k2:new-secret,k1:old-secret",
        "IMAGEHOST_API_KEYS": "test-key:tester",
        "IMAGEHOST_REFERERS": "good.example",
        "IMAGEHOST_ALLOW_EMPTY_REFERER": "0",
        "IMAGEHOST_PUBLIC_BASE_URL": f"http://127.0.0.1:{edge_port}",
        "IMAGEHOST_ACCESS_LOG": str(root / "origin-access.log"),
    }
    origin = start_edge_origin(root / "var", env, workers=2)
    edge = start_edge(Settings.from_env(origin.env), int(origin.url.rsplit(":", 1)[1]), root / "edge",
                      port=edge_port)
    result = origin.ingest(images.PHOTOS[0])
    assert result.returncode == 0, result.stderr
    yield origin, edge, json.loads(result.stdout)["id"]
    stop(edge.proc)
    stop(origin.proc)


def origin_log(origin, settled_on: str = "") -> list[str]:
    """The origin's access log (gunicorn writes a line just after answering: wait for `settled_on`)."""
    path = origin.data_dir.parent / "origin-access.log"
    deadline = time.monotonic() + 5
    while True:
        text = path.read_text() if path.exists() else ""
        if settled_on in text or time.monotonic() > deadline:
            return text.splitlines()
        time.sleep(0.05)


def get(base, path_and_query, headers=GOOD):
    return requests.get(base + path_and_query, headers=headers, timeout=60)


def assert_refused(resp, error="bad_signature", message=""):
    assert resp.status_code == 403, resp.text
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.json()["error"] == error and message in resp.json()["message"]


def test_sign_endpoint_through_the_edge(stack):
    origin, edge, image_id = stack
    body = {"paths": [f"/images/{image_id}/w300.webp", f"/images/{image_id}/w600"], "expires_in": 300}
    assert requests.post(edge.url + "/v1/sign", json=body, timeout=10).status_code == 401
    assert requests.post(edge.url + "/v1/sign", json={"paths": ["/etc/passwd"], "expires_in": 300}, headers=API,
                         timeout=10).status_code == 400
    resp = requests.post(edge.url + "/v1/sign", json=body, headers=API, timeout=10)
    assert resp.status_code == 200, resp.text
    urls = resp.json()["urls"]
    assert [urlsplit(u).path for u in urls] == body["paths"] and all(u.startswith(edge.url) for u in urls)
    assert parse_qs(urlsplit(urls[0]).query)["k"] == ["k2"]
    first, second = (requests.get(urls[0], headers=GOOD, timeout=60) for _ in range(2))
    assert first.status_code == 200 and images.size(first.content)[0] == 300
    assert (first.headers["X-Cache-Status"], second.headers["X-Cache-Status"]) == ("MISS", "HIT")


def test_refused_at_the_edge_before_the_cache(stack):
    origin, edge, image_id = stack
    path = f"/images/{image_id}/w150.webp"
    good = sign_path(NEW, path, 300)
    assert get(edge.url, good).headers["X-Cache-Status"] == "MISS"  # cached now
    other = sign_path(NEW, f"/images/{image_id}/w300.webp", 300)
    expired = sign_path(NEW, path, 10, now=time.time() - 3600)
    unknown = sign_path(SigningKeys.parse("k9:new-secret"), path, 300)
    forged = sign_path(SigningKeys.parse("k2:guessed"), path, 300)
    seen = len(origin_log(origin, settled_on=path))
    assert any(path in line for line in origin_log(origin))  # the log works
    assert_refused(get(edge.url, path), message="must be signed")
    assert_refused(get(edge.url, path + "?k=k2&e=99999999999"), message="must be signed")
    assert_refused(get(edge.url, path + "?" + other.partition("?")[2]), message="does not match")
    assert_refused(get(edge.url, good[:-2] + ("AA" if not good.endswith("AA") else "BB")), message="does not match")
    assert_refused(get(edge.url, good.replace("&e=", "&e=1")), message="does not match")
    assert_refused(get(edge.url, forged), message="does not match")
    assert_refused(get(edge.url, expired), message="expired")
    assert_refused(get(edge.url, unknown), message="unknown")
    assert_refused(get(edge.url, good, headers={}), error="hotlink_refused")  # empty Referer refused here
    assert_refused(get(edge.url, good, headers={"Referer": "https://evil.test/"}), error="hotlink_refused")
    time.sleep(0.2)
    assert len(origin_log(origin)) == seen  # none of them reached the origin
    again = get(edge.url, good)
    assert again.status_code == 200 and again.headers["X-Cache-Status"] == "HIT"


def test_presets_are_signed_like_the_rest(stack):
    origin, edge, image_id = stack
    for path in (f"/images/{image_id}/card.webp", f"/images/{image_id}/card"):  # a default preset
        assert_refused(get(edge.url, path), message="must be signed")
        assert_refused(get(origin.url, path), message="must be signed")
        assert_refused(get(edge.url, sign_path(NEW, f"/images/{image_id}/avatar.webp", 300).replace("avatar", "card")),
                       message="does not match")
        resp = get(edge.url, sign_path(NEW, path, 300))
        assert resp.status_code == 200 and images.size(resp.content) == (800, 450)
        assert get(origin.url, sign_path(NEW, path, 300)).status_code == 200
    body = {"paths": [f"/images/{image_id}/card", f"/images/{image_id}/poster"], "expires_in": 300}
    refused = requests.post(edge.url + "/v1/sign", json=body, headers=API, timeout=10)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"
    issued = requests.post(edge.url + "/v1/sign", json={**body, "paths": body["paths"][:1]}, headers=API, timeout=10)
    assert get(edge.url, issued.json()["urls"][0].removeprefix(edge.url)).status_code == 200


def test_old_key_still_accepted_during_rotation(stack):
    origin, edge, image_id = stack
    resp = get(edge.url, sign_path(OLD, f"/images/{image_id}/sq64.avif", 300))
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "image/avif"
    assert get(origin.url, sign_path(OLD, f"/images/{image_id}/sq64.webp", 300)).status_code == 200


def test_the_origin_refuses_unsigned_when_hit_directly(stack):
    origin, edge, image_id = stack
    path = f"/images/{image_id}/w150.jpeg"
    assert_refused(get(origin.url, path), message="must be signed")
    assert_refused(get(origin.url, sign_path(NEW, path, 10, now=time.time() - 3600)), message="expired")
    assert_refused(get(origin.url, sign_path(NEW, path, 300), headers={}), error="hotlink_refused")
    ok = get(origin.url, sign_path(NEW, path, 300))
    assert ok.status_code == 200 and ok.headers["Content-Type"] == "image/jpeg"
