"""The delivery contract through falcon.testing, on the embedded defaults (local store, SQLite)."""
from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from falcon import testing

from origin.app import create_app
from origin.errors import UnsupportedImage
from origin.ingest.originals import ingest
from origin.ingest.validate import Limits
from origin.pipeline import jxl
from origin.wiring import open_catalog, open_store
from tests import images

CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"


@pytest.fixture
def host(settings, metrics):
    store = open_store(settings)
    catalog = open_catalog(settings.catalog)

    class Host:
        client = testing.TestClient(create_app(settings, store, catalog, metrics))

        def add(self, data: bytes, **kw) -> str:
            return ingest(data, store, catalog, limits=Limits.from_settings(settings), **kw).id

    Host.store, Host.catalog, Host.metrics = store, catalog, metrics
    yield Host()
    catalog.close()


@pytest.mark.parametrize("fmt, mime", [("jpeg", "image/jpeg"), ("png", "image/png"), ("webp", "image/webp"),
                                       ("avif", "image/avif"), ("gif", "image/gif")])
def test_each_format_renders_to_the_asked_width(host, fmt, mime):
    image_id = host.add(images.jpeg(images.scene(640, 480)))
    resp = host.client.simulate_get(f"/images/{image_id}/w300.{fmt}")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == mime
    assert int(resp.headers["content-length"]) == len(resp.content)
    assert resp.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "vary" not in resp.headers
    assert images.size(resp.content) == (300, 225)


def test_variant_is_stored_and_served_from_the_store(host):
    image_id = host.add(images.jpeg())
    first = host.client.simulate_get(f"/images/{image_id}/w150.webp")
    assert host.store.exists(f"images/{image_id}/w150.webp")
    second = host.client.simulate_get(f"/images/{image_id}/w150.webp")
    assert first.content == second.content
    assert first.headers["etag"] == second.headers["etag"]
    lookups = {s.labels["result"]: s.value for m in host.metrics.store_lookups.collect() for s in m.samples
               if s.name.endswith("_total")}
    assert lookups == {"miss": 1.0, "hit": 1.0}


def test_never_upscales(host):
    image_id = host.add(images.jpeg(images.scene(1000, 500)))
    resp = host.client.simulate_get(f"/images/{image_id}/w2400.jpeg")
    assert images.size(resp.content) == (1000, 500)


@pytest.mark.parametrize("accept, expected", [(CHROME, "image/avif"), ("image/webp,*/*", "image/webp"),
                                              ("image/avif;q=0,image/webp", "image/webp"), ("*/*", "image/jpeg")])
def test_negotiated_width(host, accept, expected):
    image_id = host.add(images.jpeg())
    resp = host.client.simulate_get(f"/images/{image_id}/w300", headers={"Accept": accept})
    assert resp.status_code == 200
    assert resp.headers["content-type"] == expected
    assert resp.headers["vary"] == "Accept"


def test_alpha_falls_back_to_png_and_keeps_transparency(host):
    image_id = host.add(images.png_with_alpha())
    resp = host.client.simulate_get(f"/images/{image_id}/w150", headers={"Accept": "*/*"})
    assert resp.headers["content-type"] == "image/png"
    assert images.pixel(resp.content, 0, 0)[-1] == 0  # the corner stays transparent


def test_conditional_get_and_head(host):
    image_id = host.add(images.jpeg())
    url = f"/images/{image_id}/w300.webp"
    full = host.client.simulate_get(url)
    etag = full.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    not_modified = host.client.simulate_get(url, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert host.client.simulate_get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    head = host.client.simulate_head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(full.content))
    assert head.headers["etag"] == etag


@pytest.mark.parametrize("path", ["/images/abcdefgh/w301.webp", "/images/abcdefgh/w300.tiff", "/images/abcdefgh",
                                  "/images/abcdefgh/w300.webp/more", "/images/a%20b/w300.webp", "/images/"])
def test_malformed_paths_are_400_json(host, path):
    resp = host.client.simulate_get(path)
    assert resp.status_code == 400
    assert resp.json["error"] == "invalid_request" and resp.json["message"]


def test_unknown_id_is_404_json(host):
    resp = host.client.simulate_get("/images/doesnotexist/w300.webp")
    assert resp.status_code == 404
    assert resp.json == {"error": "not_found", "message": "no such image", "image_id": "doesnotexist"}


def test_an_image_that_is_not_ready_is_not_served(host):
    image_id = host.add(images.jpeg(), state="held")
    assert host.client.simulate_get(f"/images/{image_id}/w300.webp").status_code == 404
    assert host.client.simulate_get(f"/images/{image_id}/original").status_code == 404
    assert not host.store.exists(f"images/{image_id}/w300.webp")


def test_crops(host):
    image_id = host.add(images.jpeg(images.scene(640, 480)))
    for kind in ("sq", "sm"):
        resp = host.client.simulate_get(f"/images/{image_id}/{kind}150.webp")
        assert images.size(resp.content) == (150, 150)


def test_smart_crop_finds_the_subject(host):
    # a bright disc on a flat field, far to the right: attention keeps it, centre cuts it off
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (900, 300), (90, 90, 90))
    ImageDraw.Draw(picture).ellipse((760, 110, 860, 210), fill=(255, 30, 30))
    image_id = host.add(images.jpeg(picture))
    smart = host.client.simulate_get(f"/images/{image_id}/sm150.png").content
    centre = host.client.simulate_get(f"/images/{image_id}/sq150.png").content

    def reddest(data):
        return max(images.pixel(data, x, 75)[0] - images.pixel(data, x, 75)[1] for x in range(0, 150, 5))

    assert reddest(smart) > 150 > reddest(centre)


def test_animation_stays_animated(host):
    image_id = host.add(images.animated_gif(frames=6))
    for variant in ("w150.gif", "w150.webp", "sq64.gif", "sm64.webp", "original"):
        resp = host.client.simulate_get(f"/images/{image_id}/{variant}")
        assert resp.status_code == 200, variant
        assert images.frames(resp.content) == 6, variant
    still = host.client.simulate_get(f"/images/{image_id}/sq64.jpeg").content
    assert images.size(still) == (64, 64)


def test_exif_orientation_is_applied_and_dropped(host):
    image_id = host.add(images.rotated_jpeg())
    for variant in ("original", "w150.jpeg", "w150.webp"):
        data = host.client.simulate_get(f"/images/{image_id}/{variant}").content
        width, height = images.size(data)
        assert height > width, variant  # portrait, as the camera meant it
        assert images.metadata_fields(data) == [], variant  # no orientation tag left to apply twice
    data = host.client.simulate_get(f"/images/{image_id}/original").content
    red, _, blue = images.pixel(data, 100, 20)  # orientation 6: the stored left half ends up on top
    assert red > 200 and blue < 60


def test_gps_and_serials_never_leave(host):
    original = images.gps_jpeg()
    assert images.has_gps(original)
    image_id = host.add(original)
    for variant in ("original", "w300.jpeg", "w300.webp", "w300.avif", "w300.png", "sq64.jpeg", "sm64.webp"):
        data = host.client.simulate_get(f"/images/{image_id}/{variant}").content
        assert not images.has_gps(data), variant
        assert b"SERIAL-123456" not in data and b"ImagehostCam" not in data, variant


def test_icc_profile_is_kept(host):
    import pyvips

    with_icc = pyvips.Image.new_from_buffer(images.jpeg(), "").icc_transform("p3")
    image_id = host.add(with_icc.jpegsave_buffer())
    data = host.client.simulate_get(f"/images/{image_id}/w150.jpeg").content
    assert pyvips.Image.new_from_buffer(data, "").get_typeof("icc-profile-data") != 0


def test_a_profile_that_only_says_srgb_leaves_no_variant(host):
    """A camera photo tagged with the 3,144-byte sRGB IEC61966-2.1 profile (tests/test_profiles.py)."""
    from tests.test_profiles import KITE, profile_of

    image_id = host.add(KITE.read_bytes())
    assert profile_of(KITE.read_bytes())
    for variant in ("w150.jpeg", "w300.webp", "w300.avif", "sq64.jpeg", "w600.png", "w300.jxl", "original"):
        resp = host.client.simulate_get(f"/images/{image_id}/{variant}")  # sq64: an eager thumbnail
        assert resp.status_code == 200, variant
        if not variant.endswith(".jxl"):
            assert profile_of(resp.content) is None, variant
        if variant == "original":  # the public original, re-encoded without metadata
            assert images.size(resp.content) == (2560, 1600)


def test_hevc_heic_is_served_from_its_master(host):
    data = images.hevc_heic(640, 480)
    image_id = host.add(data)
    assert host.store.get(f"images/{image_id}/source.heic") == data  # the untouched original is kept
    assert host.store.exists(f"images/{image_id}/master.jpg")
    resp = host.client.simulate_get(f"/images/{image_id}/w300.avif")
    assert resp.headers["content-type"] == "image/avif" and images.size(resp.content) == (300, 225)
    original = host.client.simulate_get(f"/images/{image_id}/original")
    assert original.headers["content-type"] == "image/jpeg"
    assert images.size(original.content) == (640, 480)


def test_jpeg_xl_is_served_from_its_master(host):
    data = images.jxl(300, 200, alpha=True)
    image_id = host.add(data)
    assert host.store.get(f"images/{image_id}/source.jxl") == data  # the untouched original is kept
    assert host.store.exists(f"images/{image_id}/master.png")  # alpha: a PNG master
    resp = host.client.simulate_get(f"/images/{image_id}/w150.png")
    assert resp.headers["content-type"] == "image/png" and images.size(resp.content) == (150, 100)
    assert images.pixel(resp.content, 2, 2)[3] == 0 and images.pixel(resp.content, 75, 50)[3] == 255
    original = host.client.simulate_get(f"/images/{image_id}/original")
    assert original.headers["content-type"] == "image/jxl"
    assert jxl.decode(original.content).shape == (200, 300, 4)


def test_ingest_refuses_what_is_not_an_image(host):
    with pytest.raises(UnsupportedImage):
        host.add(b"<?php system($_GET['c']); ?>" + b"\0" * 100)
    with pytest.raises(UnsupportedImage):
        host.add(images.jpeg()[:2000])  # truncated


def test_concurrent_misses_render_once(settings, metrics):
    store = open_store(settings)
    catalog = open_catalog(settings.catalog)
    app = create_app(replace(settings, render_concurrency=4), store, catalog, metrics)
    client = testing.TestClient(app)
    image_id = ingest(images.jpeg(images.scene(2000, 1500)), store, catalog, limits=Limits()).id
    barrier = threading.Barrier(8)
    results = []

    def fetch():
        barrier.wait()
        results.append(client.simulate_get(f"/images/{image_id}/w1200.avif"))

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [200] * 8
    assert len({r.content for r in results}) == 1
    renders = sum(s.value for m in metrics.renders.collect() for s in m.samples if s.name.endswith("_total"))
    assert renders == 1


def test_health_ready_metrics(host):
    assert host.client.simulate_get("/healthz").json == {"status": "ok"}
    assert host.client.simulate_get("/readyz").json["status"] == "ready"
    image_id = host.add(images.jpeg())
    host.client.simulate_get(f"/images/{image_id}/w150.avif")
    text = host.client.simulate_get("/metrics").text
    for name in ("imagehost_renders_total{format=\"avif\"} 1.0", "imagehost_render_seconds_bucket",
                 "imagehost_store_lookups_total", "imagehost_bytes_out_total", "imagehost_renders_in_flight"):
        assert name in text
