"""The origin as deployed: real gunicorn (2 gthread workers) on a loopback port, images ingested by the CLI."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests import images

CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
SAFARI_15 = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5"


@pytest.fixture(scope="module")
def ids(origin, tmp_path_factory):
    folder = tmp_path_factory.mktemp("uploads")
    files = {
        "photo": images.BIG_PHOTO,
        "gif": folder / "anim.gif",
        "rotated": folder / "rotated.jpg",
        "gps": folder / "gps.jpg",
        "heic": folder / "phone.heic",
        "alpha": folder / "logo.png",
    }
    files["gif"].write_bytes(images.animated_gif())
    files["rotated"].write_bytes(images.rotated_jpeg())
    files["gps"].write_bytes(images.gps_jpeg())
    files["heic"].write_bytes(images.hevc_heic(1280, 960))
    files["alpha"].write_bytes(images.png_with_alpha())
    result = origin.ingest(*files.values())
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["url"] for line in lines] == [f"{origin.url}/images/{line['id']}/original" for line in lines]
    return dict(zip(files, (line["id"] for line in lines)))


def get(origin, path, **headers):
    return requests.get(origin.url + path, headers=headers, timeout=60)


def test_cli_refuses_a_non_image_by_its_bytes(origin, tmp_path):
    fake = tmp_path / "cat.jpg"
    fake.write_text("<html>not a picture</html>")
    result = origin.ingest(fake)
    assert result.returncode != 0
    assert "refused" in result.stderr and "not a supported image" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif", "gif"])
def test_real_photo_in_every_format(origin, ids, fmt):
    resp = get(origin, f"/images/{ids['photo']}/w600.{fmt}")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == f"image/{fmt}"
    assert int(resp.headers["Content-Length"]) == len(resp.content)
    assert images.size(resp.content) == (600, 337)  # 5640 × 3172 scaled to 600 wide


def test_real_photo_thumbnails_and_original(origin, ids):
    for variant in ("sq300.webp", "sm300.avif"):
        assert images.size(get(origin, f"/images/{ids['photo']}/{variant}").content) == (300, 300)
    original = get(origin, f"/images/{ids['photo']}/original")
    assert original.headers["Content-Type"] == "image/jpeg"
    assert images.size(original.content) == (5640, 3172)


@pytest.mark.parametrize("accept, expected", [(CHROME, "image/avif"), (SAFARI_15, "image/webp"),
                                              ("image/avif;q=0, image/webp", "image/webp"), ("*/*", "image/jpeg")])
def test_negotiation(origin, ids, accept, expected):
    resp = get(origin, f"/images/{ids['photo']}/w300", Accept=accept)
    assert resp.headers["Content-Type"] == expected
    assert resp.headers["Vary"] == "Accept"
    assert get(origin, f"/images/{ids['alpha']}/w150", Accept="*/*").headers["Content-Type"] == "image/png"


def test_caching_headers_304_and_head(origin, ids):
    url = f"/images/{ids['photo']}/w150.webp"
    first = get(origin, url)
    assert first.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    etag = first.headers["ETag"]
    again = get(origin, url, **{"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    head = requests.head(origin.url + url, timeout=10)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(first.content))


def test_errors_are_json(origin, ids):
    for path, status in ((f"/images/{ids['photo']}/w333.webp", 400), ("/images/x", 400),
                         (f"/images/{ids['photo']}/w300.bmp", 400), ("/images/nosuchimage/w300.webp", 404)):
        resp = get(origin, path)
        assert resp.status_code == status, path
        assert resp.headers["Content-Type"] == "application/json"
        assert resp.json()["message"]


def test_animated_gif_stays_animated(origin, ids):
    for variant in ("w300.gif", "w300.webp", "sq150.webp"):
        assert images.frames(get(origin, f"/images/{ids['gif']}/{variant}").content) == 6


def test_exif_rotation(origin, ids):
    data = get(origin, f"/images/{ids['rotated']}/w150.jpeg").content
    assert images.size(data) == (150, 300)  # displayed 200 × 400, portrait
    assert images.metadata_fields(data) == []


def test_gps_stripped_over_http(origin, ids):
    for variant in ("original", "w300.jpeg", "w300.webp", "w300.avif", "sq64.png"):
        data = get(origin, f"/images/{ids['gps']}/{variant}").content
        assert not images.has_gps(data), variant


def test_hevc_heic(origin, ids):
    resp = get(origin, f"/images/{ids['heic']}/w600", Accept=CHROME)
    assert resp.headers["Content-Type"] == "image/avif"
    assert images.size(resp.content) == (600, 450)


def test_concurrent_requests_and_metrics(origin, ids):
    url = f"/images/{ids['photo']}/w1200.webp"
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda _: get(origin, url).content, range(16)))
    assert len(set(bodies)) == 1 and images.size(bodies[0]) == (1200, 675)
    text = get(origin, "/metrics").text
    renders = sum(float(line.split()[-1]) for line in text.splitlines()
                  if line.startswith('imagehost_renders_total{format="webp"}'))
    assert renders >= 1  # summed across both workers
    assert get(origin, "/readyz").json()["status"] == "ready"
