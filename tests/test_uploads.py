"""The upload pipeline on the embedded defaults, as deployed: real gunicorn with its in-process
workers, the local store's signed upload URLs, real clamd with the project's signatures."""
from __future__ import annotations

import hashlib
import json
import struct
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests

from origin.security import webhooks
from tests import images
from tests.servers import start_origin, stop
from tests.uploads import (KEYS_ENV, OTHER_KEY, auth, request_upload, send_bytes, status,
                           upload, wait_state)

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


@pytest.fixture(scope="module")
def host(tmp_path_factory, clamd_socket):
    env = {**KEYS_ENV, "IMAGEHOST_CLAMD_SOCKET": str(clamd_socket), "IMAGEHOST_MODERATION": "fixed:0.1",
           "IMAGEHOST_MAX_FRAMES": "20", "IMAGEHOST_UPLOAD_URL_SECONDS": "30"}
    server = start_origin(tmp_path_factory.mktemp("uploads") / "var", env)
    yield server
    stop(server.proc)


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


def jpeg_with_comment(comment: bytes) -> bytes:
    data = images.jpeg()
    segment = b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment
    return data[:2] + segment + data[2:]


def test_upload_to_ready_with_metadata_and_variants(host):
    photo = images.gps_jpeg()
    target = upload(host.url, photo, filename="holiday.jpg", content_type="image/jpeg")
    assert target["method"] == "PUT" and target["status_url"].endswith(f"/v1/images/{target['id']}")
    info = wait_state(host.url, target["id"])
    assert info["state"] == "ready", info
    assert info["seen"][-1] == "ready"
    meta = info["metadata"]
    assert (info["width"], info["height"]) == (640, 480)
    assert meta["gps_present"] is True and meta["camera_make"] == "ImagehostCam" and meta["format"] == "jpeg"
    assert info["sha256"] == hashlib.sha256(photo).hexdigest() and len(info["phash"]) == 16
    store = host.data_dir / "store" / "images" / target["id"]
    for kind in ("sq", "sm"):
        for size in (64, 150, 300):
            for fmt in ("webp", "avif"):
                assert (store / f"{kind}{size}.{fmt}").is_file()  # eager thumbnails exist before `ready`
    assert (host.data_dir / "store" / "records" / f"{target['id']}.json").is_file()  # the record fallback
    public = requests.get(info["urls"]["widths"]["w300"], headers={"Accept": "image/avif"}, timeout=30)
    assert public.headers["Content-Type"] == "image/avif" and not images.has_gps(public.content)
    original = requests.get(info["urls"]["download"], headers=auth(), timeout=30)
    assert original.content == photo  # the owner gets the untouched bytes, GPS and all
    assert requests.get(info["urls"]["download"], headers=auth(OTHER_KEY), timeout=10).status_code == 404
    assert requests.get(info["urls"]["download"], timeout=10).status_code == 401


def test_heic_from_a_phone(host):
    target = upload(host.url, images.hevc_heic(1024, 768), filename="IMG_0001.HEIC", content_type="image/heic")
    info = wait_state(host.url, target["id"])
    assert info["state"] == "ready" and info["content_type"] == "image/heic"
    resp = requests.get(info["urls"]["widths"]["w600"], headers={"Accept": "image/webp"}, timeout=30)
    assert resp.headers["Content-Type"] == "image/webp" and images.size(resp.content) == (600, 450)


def test_jpeg_xl_with_exif_and_gps(host):
    photo = images.jxl_from_jpeg(images.gps_jpeg())  # the JPEG's Exif rides along, Brotli-compressed
    target = upload(host.url, photo, filename="holiday.jxl", content_type="image/jxl")
    info = wait_state(host.url, target["id"])
    assert info["state"] == "ready" and info["content_type"] == "image/jxl", info
    meta = info["metadata"]
    assert (meta["format"], meta["camera_make"], meta["gps_present"]) == ("jxl", "ImagehostCam", True)
    public = requests.get(info["urls"]["widths"]["w300"], headers={"Accept": "image/webp"}, timeout=30)
    assert public.headers["Content-Type"] == "image/webp" and images.size(public.content) == (300, 225)
    assert not images.has_gps(public.content) and images.metadata_fields(public.content) == []
    assert requests.get(info["urls"]["download"], headers=auth(), timeout=30).content == photo


@pytest.mark.parametrize("name, data, reason", [
    ("wrong magic bytes", b"MZ\x90\x00" + b"\0" * 4000, "unsupported_type"),
    ("php in a JPEG comment", jpeg_with_comment(b'<?php system($_GET["c"]); ?>'), "malware"),
    ("EICAR", images.jpeg() + EICAR, "malware"),
    ("truncated JPEG", images.jpeg()[:3000], "corrupt"),
    ("truncated HEIC", images.hevc_heic()[:-5000], "corrupt"),
    ("truncated JPEG XL", images.jxl()[:-3000], "corrupt"),
    ("50k x 50k JPEG XL", images.jxl_declaring(50_000, 50_000), "too_many_pixels"),
    ("50k x 50k PNG", bomb_png(), "too_many_pixels"),
    ("GIF with too many frames", images.animated_gif(frames=25), "too_many_frames"),
])
def test_bad_input_is_quarantined(host, name, data, reason):
    target = upload(host.url, data, filename="x.jpg", content_type="image/jpeg")
    info = wait_state(host.url, target["id"])
    assert info["state"] == "quarantined", name
    assert info["reason"] == reason, (name, info)
    assert info["detail"]
    image_id = target["id"]
    assert requests.get(f"{host.url}/images/{image_id}/w300.webp", timeout=10).status_code == 404
    assert not (host.data_dir / "store" / "images" / image_id).exists()  # nothing half-public
    assert (host.data_dir / "store" / "quarantine" / image_id / "upload").read_bytes() == data  # kept for audit


def test_too_large_is_refused_before_it_is_accepted(host):
    limit = 20 * 1024 * 1024
    answer = requests.post(f"{host.url}/v1/uploads", json={"size": limit + 1}, headers=auth(), timeout=10)
    assert answer.status_code == 413 and answer.json()["error"] == "too_large"
    target = request_upload(host.url)
    resp = send_bytes(target, b"\xff\xd8\xff" + b"\0" * (21 * 1024 * 1024))
    assert resp.status_code == 413 and resp.json()["error"] == "too_large"
    assert status(host.url, target["id"])["state"] == "requested"  # nothing was accepted


def test_upload_url_is_single_use_and_bound_to_its_id(host):
    target = request_upload(host.url)
    assert send_bytes(target, images.jpeg()).status_code == 201
    again = send_bytes(target, images.jpeg())
    assert again.status_code == 403 and again.json()["error"] == "bad_upload_token"
    other = request_upload(host.url)
    forged = dict(target, url=target["url"].replace(target["id"], other["id"]))
    assert send_bytes(forged, images.jpeg()).status_code == 403
    altered = dict(other, url=other["url"][:-3] + "abc")
    assert send_bytes(altered, images.jpeg()).status_code == 403


def test_upload_url_expires(tmp_path, clamd_socket):
    env = {**KEYS_ENV, "IMAGEHOST_CLAMD_SOCKET": str(clamd_socket), "IMAGEHOST_MODERATION": "fixed:0.1",
           "IMAGEHOST_UPLOAD_URL_SECONDS": "1", "IMAGEHOST_WORKERS": "1"}
    server = start_origin(tmp_path / "var", env, workers=1)
    try:
        target = request_upload(server.url)
        time.sleep(2.5)
        resp = send_bytes(target, images.jpeg())
        assert resp.status_code == 403 and "expired" in resp.json()["message"]
    finally:
        stop(server.proc)


def test_api_needs_a_key_and_hides_other_owners_images(host):
    assert requests.post(f"{host.url}/v1/uploads", json={}, timeout=10).status_code == 401
    assert requests.post(f"{host.url}/v1/uploads", json={}, headers=auth("nope"), timeout=10).status_code == 401
    bad_type = requests.post(f"{host.url}/v1/uploads", json={"content_type": "text/html"}, headers=auth(), timeout=10)
    assert bad_type.status_code == 415
    target = upload(host.url, images.jpeg())
    assert requests.get(f"{host.url}/v1/images/{target['id']}", headers=auth(OTHER_KEY), timeout=10).status_code == 404


def test_list_paginates_and_delete_removes_everything(host):
    # three different photos: near-duplicates would share one content (dedup), and this deletes one image
    ids = [upload(host.url, photo.read_bytes())["id"] for photo in images.PHOTOS]
    for image_id in ids:
        wait_state(host.url, image_id)
    seen, cursor = [], None
    while True:
        page = requests.get(f"{host.url}/v1/images", params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                            headers=auth(), timeout=10).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen[:3] == ids[::-1]  # newest first
    assert len(seen) == len(set(seen))
    victim = ids[0]
    assert requests.get(f"{host.url}/images/{victim}/sq150.webp", timeout=10).status_code == 200
    assert requests.delete(f"{host.url}/v1/images/{victim}", headers=auth(OTHER_KEY), timeout=10).status_code == 404
    assert requests.delete(f"{host.url}/v1/images/{victim}", headers=auth(), timeout=10).status_code == 204
    time.sleep(2.2)  # the origin caches a record for up to 2 s
    assert requests.get(f"{host.url}/images/{victim}/sq150.webp", timeout=10).status_code == 404
    assert not (host.data_dir / "store" / "images" / victim).exists()
    assert requests.get(f"{host.url}/v1/images/{victim}", headers=auth(), timeout=10).status_code == 404


def test_quarantine_webhook_is_signed(host):
    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hook = f"http://127.0.0.1:{server.server_port}/hook"
        target = upload(host.url, images.jpeg() + EICAR, callback_url=hook)
        assert wait_state(host.url, target["id"])["state"] == "quarantined"
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        headers, body = received[0]
        event = json.loads(body)
        assert event["event"] == "image.quarantined" and event["id"] == target["id"] and event["reason"] == "malware"
        assert webhooks.verify("test-webhook-secret", headers["X-Imagehost-Timestamp"], body,
                               headers["X-Imagehost-Signature"])
        assert not webhooks.verify("another-secret", headers["X-Imagehost-Timestamp"], body,
                                   headers["X-Imagehost-Signature"])
    finally:
        server.shutdown()


def test_openapi_document(host):
    doc = requests.get(f"{host.url}/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.1")
    for path in ("/v1/uploads", "/v1/uploads/{image_id}", "/v1/images", "/v1/images/{image_id}",
                 "/v1/images/{image_id}/original", "/v1/review", "/v1/review/{image_id}"):
        assert path in doc["paths"], path
