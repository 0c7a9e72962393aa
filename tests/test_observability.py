"""Logs and request ids, for real: a gunicorn origin behind a real nginx edge.

One JSON line per request and per job step; the edge sets X-Request-Id, the origin logs it and
returns it, and the worker's lines for an upload carry the id of the request that made it; no
API key, upload token or URL signature ever reaches a log line (origin or edge)."""
from __future__ import annotations

import json
import time

import pytest
import requests

from origin.config import Settings
from origin.logs import scrub
from tests import images
from tests.servers import start_edge, start_origin, stop
from tests.uploads import API_KEY, KEYS_ENV, REVIEWER_KEY, auth, request_upload, send_bytes, wait_state

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory, clamd_socket):
    base = tmp_path_factory.mktemp("observe")
    env = {**KEYS_ENV, "IMAGEHOST_CLAMD_SOCKET": str(clamd_socket), "IMAGEHOST_MODERATION": "fixed:0.97",
           "IMAGEHOST_SIGNING_REQUIRED": "1"}
    origin = start_origin(base / "var", env, workers=2)
    edge = start_edge(Settings.from_env(origin.env), int(origin.url.rsplit(":", 1)[1]), base / "edge")
    yield origin, edge
    stop(edge.proc)
    stop(origin.proc)


def log_lines(origin) -> list[dict]:
    found = []
    for line in (origin.data_dir / "gunicorn.log").read_text().splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))  # every structured line is one whole JSON object
    return found


def wait_for_line(origin, match, timeout=20.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hits = [line for line in log_lines(origin) if match(line)]
        if hits:
            return hits
        time.sleep(0.1)
    return []


def test_the_edge_sets_the_request_id_the_origin_logs_returns_and_the_worker_carries(stack):
    origin, edge = stack
    answer = requests.post(f"{edge.url}/v1/uploads", json={"filename": "a.jpg", "content_type": "image/jpeg"},
                           headers={**auth(), "X-Request-Id": "client-chosen-id"}, timeout=30)
    assert answer.status_code == 201
    rid = answer.headers["X-Request-Id"]
    assert len(rid) == 32 and rid != "client-chosen-id"  # the edge's own id, never a client's
    image_id = answer.json()["id"]
    lines = wait_for_line(origin, lambda l: l.get("msg") == "request" and l.get("request_id") == rid)
    assert len(lines) == 1 and lines[0]["route"] == "/v1/uploads" and lines[0]["status"] == 201
    assert f"rid={rid}" in edge.access_log() or wait_edge_log(edge, rid)
    # the bytes go straight to the origin's upload URL; the worker's step lines carry the upload's id
    assert send_bytes(answer.json(), images.jpeg(images.scene(333, 222))).status_code in (200, 201, 204)
    assert wait_state(origin.url, image_id)["state"] == "held"
    steps = wait_for_line(origin, lambda l: l.get("msg") == "job_step" and l.get("image_id") == image_id
                          and l.get("to") == "held")
    assert steps and steps[0]["request_id"] == rid and steps[0]["step"] == "moderating"
    all_steps = [l for l in log_lines(origin) if l.get("msg") == "job_step" and l.get("image_id") == image_id]
    assert [l["step"] for l in all_steps] == ["uploaded", "validating", "moderating"]
    assert {l["request_id"] for l in all_steps} == {rid} and all(l["outcome"] == "ok" for l in all_steps)


def wait_edge_log(edge, rid) -> bool:
    deadline = time.monotonic() + 5  # the access log is buffered for up to 1 s
    while time.monotonic() < deadline:
        if f"rid={rid}" in edge.access_log():
            return True
        time.sleep(0.2)
    return False


def test_a_cached_answer_carries_this_requests_id(stack):
    origin, edge = stack
    target = request_upload(origin.url, filename="b.jpg", content_type="image/jpeg")
    send_bytes(target, images.jpeg(images.scene(345, 230)))
    assert wait_state(origin.url, target["id"])["state"] == "held"
    approve = requests.post(f"{origin.url}/v1/review/{target['id']}", json={"action": "approve"},
                            headers=auth(REVIEWER_KEY), timeout=30)
    assert approve.status_code == 200
    assert wait_state(origin.url, target["id"])["state"] == "ready"
    signed = requests.post(f"{origin.url}/v1/sign", json={"paths": [f"/images/{target['id']}/w150.webp"],
                                                          "expires_in": 600}, headers=auth(), timeout=30).json()
    url = signed["urls"][0]
    path_and_query = url[url.index("/images/"):]
    first = requests.get(edge.url + path_and_query, timeout=30)
    second = requests.get(edge.url + path_and_query, timeout=30)
    assert first.status_code == second.status_code == 200 and second.headers["X-Cache-Status"] == "HIT"
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]


def test_one_line_per_request_and_never_a_secret(stack):
    origin, edge = stack
    ids = [f"probe-{n}" for n in range(5)]
    for rid in ids:
        requests.get(f"{origin.url}/healthz", headers={"X-Request-Id": rid}, timeout=10)
    # the secrets a request can carry: an API key, an upload token, URL signatures (good and bad)
    target = request_upload(origin.url, filename="c.jpg", content_type="image/jpeg")
    token = target["url"].split("token=", 1)[1]
    send_bytes(target, images.jpeg(images.scene(350, 240)))
    wait_state(origin.url, target["id"])
    reused = requests.put(target["url"], data=b"again", timeout=30)  # refused: the token is logged nowhere
    assert reused.status_code == 403
    forged = "s=FORGEDSIGNATURE0123456789abcdef"
    for base in (origin.url, edge.url):
        requests.get(f"{base}/images/{target['id']}/w150.webp?k=k1&e=9999999999&{forged}", timeout=30)
    review = requests.get(f"{origin.url}/v1/review", headers=auth(REVIEWER_KEY), timeout=30).json()
    preview = review["items"][0]["preview_url"]
    assert requests.get(preview, timeout=30).status_code == 200
    preview_sig = preview.split("s=", 1)[1].split("&")[0]
    time.sleep(1.5)  # the edge flushes its access log every second
    text = (origin.data_dir / "gunicorn.log").read_text() + edge.access_log()
    for secret in (API_KEY, REVIEWER_KEY, token, "FORGEDSIGNATURE", preview_sig, "test-signing-secret"):
        assert secret not in text
    lines = log_lines(origin)
    for rid in ids:
        mine = [l for l in lines if l.get("request_id") == rid]
        assert len(mine) == 1 and mine[0]["msg"] == "request" and mine[0]["status"] == 200
        assert set(mine[0]) >= {"ts", "level", "method", "route", "path", "status", "ms"}
    puts = [l for l in lines if l.get("msg") == "request" and l.get("method") == "PUT"]
    assert puts and all("?" not in l["path"] for l in puts)
    assert any(l["status"] == 403 for l in puts)


def test_scrub_removes_what_looks_like_a_secret():
    text = scrub("GET /v1/uploads/x?token=abc.def-ghi&n=1 /images/a/w1?k=k1&e=9&s=SIG_value "
                 "Authorization: Bearer dev-KEY123 https://b.s3/k?X-Amz-Signature=deadbeef&X-Amz-Credential=AK/1")
    for secret in ("abc.def-ghi", "SIG_value", "dev-KEY123", "deadbeef", "AK/1"):
        assert secret not in text
    assert "n=1" in text and "k=k1" in text and "e=9" in text and "/v1/uploads/x" in text
