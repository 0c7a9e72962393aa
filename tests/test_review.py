"""Moderation on the full path: held images serve nothing until a reviewer acts."""
from __future__ import annotations

import pytest
import requests

from origin.config import Settings

from tests import images
from tests.servers import start_origin, stop
from tests.uploads import API_KEY, KEYS_ENV, REVIEWER_KEY, auth, upload, wait_state


@pytest.fixture(scope="module")
def strict_host(tmp_path_factory, clamd_socket):
    """Every image scores 0.97: all are held."""
    env = {**KEYS_ENV, "IMAGEHOST_CLAMD_SOCKET": str(clamd_socket), "IMAGEHOST_MODERATION": "fixed:0.97"}
    server = start_origin(tmp_path_factory.mktemp("review") / "var", env)
    yield server
    stop(server.proc)


def queue(host) -> list[dict]:
    resp = requests.get(f"{host.url}/v1/review", headers=auth(REVIEWER_KEY), timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


def decide(host, image_id, action, key=REVIEWER_KEY):
    return requests.post(f"{host.url}/v1/review/{image_id}", json={"action": action}, headers=auth(key), timeout=30)


def test_held_image_is_never_served_and_approval_releases_it(strict_host):
    target = upload(strict_host.url, images.jpeg(), filename="beach.jpg")
    info = wait_state(strict_host.url, target["id"])
    assert info["state"] == "held" and info["moderation_score"] == 0.97 and info["reason"] == "nsfw_score"
    image_id = target["id"]
    for variant in ("original", "w300.webp", "w300", "sq150.avif"):
        assert requests.get(f"{strict_host.url}/images/{image_id}/{variant}", timeout=10).status_code == 404
    held = {item["id"]: item for item in queue(strict_host)}
    assert held[image_id]["score"] == 0.97
    preview = held[image_id]["preview_url"]
    shown = requests.get(preview, timeout=30)
    assert shown.status_code == 200 and shown.headers["Content-Type"] == "image/webp"
    assert "no-store" in shown.headers["Cache-Control"]
    assert requests.get(preview.replace("&s=", "&s=x"), timeout=10).status_code == 403  # altered signature
    assert requests.get(preview.split("?")[0], timeout=10).status_code == 403  # unsigned
    assert requests.get(f"{strict_host.url}/v1/review", headers=auth(API_KEY), timeout=10).status_code == 403
    assert decide(strict_host, image_id, "approve", key=API_KEY).status_code == 403
    assert decide(strict_host, image_id, "maybe").status_code == 400
    assert decide(strict_host, image_id, "approve").status_code == 200
    assert wait_state(strict_host.url, image_id, states=("ready",))["state"] == "ready"
    assert requests.get(f"{strict_host.url}/images/{image_id}/w300.webp", timeout=30).status_code == 200
    assert image_id not in {item["id"] for item in queue(strict_host)}
    assert decide(strict_host, image_id, "approve").status_code == 404  # not held any more


def test_rejection_deletes_everything(strict_host):
    target = upload(strict_host.url, images.jpeg(images.scene(500, 400)))
    assert wait_state(strict_host.url, target["id"])["state"] == "held"
    assert decide(strict_host, target["id"], "reject").json()["state"] == "deleted"
    assert requests.get(f"{strict_host.url}/v1/images/{target['id']}", headers=auth(), timeout=10).status_code == 404
    assert not (strict_host.data_dir / "store" / "images" / target["id"]).exists()


def test_the_default_model_on_the_full_path(tmp_path, clamd_socket):
    env = {**KEYS_ENV, "IMAGEHOST_CLAMD_SOCKET": str(clamd_socket), "IMAGEHOST_WORKERS": "1"}  # default model
    server = start_origin(tmp_path / "var", env, workers=1)
    try:
        target = upload(server.url, images.BIG_PHOTO.read_bytes(), filename="elephants.jpg")
        info = wait_state(server.url, target["id"], timeout=120)
        assert info["state"] == "ready", info
        assert 0.0 <= info["moderation_score"] < Settings().nsfw_threshold
    finally:
        stop(server.proc)
