"""Helpers for driving the upload API as a client would, or handing an upload to the worker's steps."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import requests

API_KEY = "test-key-alice"
OTHER_KEY = "test-key-bob"
REVIEWER_KEY = "test-key-rita"
KEYS_ENV = {
    "IMAGEHOST_API_KEYS": f"{API_KEY}:alice,{OTHER_KEY}:bob",
    "IMAGEHOST_REVIEWER_KEYS": f"{REVIEWER_KEY}:rita",
    "IMAGEHOST_SIGNING_KEYS": "k1:test-signing-secret",
    "IMAGEHOST_WEBHOOK_SECRET": "test-webhook-secret",
}


def auth(key: str = API_KEY) -> dict:
    return {"Authorization": f"Bearer {key}"}


def request_upload(base: str, key: str = API_KEY, **body) -> dict:
    resp = requests.post(f"{base}/v1/uploads", json=body, headers=auth(key), timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.json()


def send_bytes(target: dict, data: bytes) -> requests.Response:
    if target["method"] == "PUT":
        return requests.put(target["url"], data=data, headers=target.get("headers", {}), timeout=60)
    files = {"file": ("upload", data, target["fields"].get("Content-Type", "application/octet-stream"))}
    return requests.post(target["url"], data=target["fields"], files=files, timeout=60)


def upload(base: str, data: bytes, key: str = API_KEY, **body) -> dict:
    target = request_upload(base, key, **body)
    resp = send_bytes(target, data)
    assert resp.status_code in (200, 201, 204), resp.text
    return target


def status(base: str, image_id: str, key: str = API_KEY) -> dict:
    resp = requests.get(f"{base}/v1/images/{image_id}", headers=auth(key), timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def wait_state(base: str, image_id: str, states=("ready", "quarantined", "held"), timeout: float = 60,
               key: str = API_KEY) -> dict:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        info = status(base, image_id, key)
        if not seen or seen[-1] != info["state"]:
            seen.append(info["state"])
        if info["state"] in states:
            info["seen"] = seen
            return info
        time.sleep(0.1)
    raise AssertionError(f"{image_id} stayed in {seen} for {timeout} s")


def worker_upload(pipe, data: bytes, owner: str = "alice") -> str:
    """An upload as the worker finds it (a record in `uploaded`, its bytes under uploads/), then the
    worker's real steps (origin.ingest.worker.run_job); returns the new image's id."""
    from origin.ingest.originals import new_id
    from origin.ingest.worker import run_job
    from origin.keys import upload_key
    from origin.ports.catalog import ImageRecord

    image_id = new_id()
    pipe.catalog.add(ImageRecord(id=image_id, content_type="", width=0, height=0, bytes=len(data), sha256="",
                                 state="uploaded", owner=owner, created_at=datetime.now(timezone.utc)))
    pipe.store.put(upload_key(image_id), data, "")
    run_job(pipe, image_id)
    return image_id
