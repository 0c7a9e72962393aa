"""Placeholders (origin/pipeline/placeholders.py, thumbhash.py) on real photos: the decoded PNG keeps
the picture's aspect and average colour (alpha too); the ThumbHash is made at ingest by the worker
and the bulk import, kept per content in the real SQLite and PostgreSQL catalogs and in the record
fallback, shared by an alias, answered in GET /v1/images/{id}, and served at /images/{id}/placeholder
— made on first request for a content that has none."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import requests
import pyvips
from PIL import Image

from origin import keys
from origin.pipeline import fallback, placeholders, thumbhash
from tests import images
from tests.test_dedup_pipeline import make_host

PHOTO = images.PHOTOS[0]  # Aqua.jpg, landscape
ALPHA_PHOTO = images.PHOTO_DIR / "abstract" / "Arc-Colors-Transparent-Wallpaper.png"  # mostly transparent
API = {"Authorization": "Bearer placeholder-key"}


def cut(path, width: int, height: int) -> bytes:
    """A real photo cut to width × height (a portrait or a square from a landscape one)."""
    image = pyvips.Image.new_from_file(str(path))
    image = image.crop((image.width - width) // 2, (image.height - height) // 2, width, height)
    return image.pngsave_buffer(compression=1) if image.hasalpha() else image.jpegsave_buffer(Q=92)


def rgba(data: bytes) -> np.ndarray:
    picture = Image.open(io.BytesIO(data)).convert("RGBA")
    return np.asarray(picture, dtype=np.float64) / 255.0


def same_aspect(drawn, picture) -> bool:
    """The same orientation, and the short side within a pixel of the picture's, scaled (rounding)."""
    (w, h), (width, height) = drawn, picture
    expected = placeholders.LONG_SIDE * min(width, height) / max(width, height)
    return (w >= h) == (width >= height) and abs(min(w, h) - expected) <= 1.0


def shapes():
    full = pyvips.Image.new_from_file(str(PHOTO))
    alpha = pyvips.Image.new_from_file(str(ALPHA_PHOTO))
    return {
        "landscape": PHOTO.read_bytes(),
        "portrait": cut(PHOTO, full.height * 2 // 3, full.height),
        "square": cut(PHOTO, full.height, full.height),
        "panorama": cut(PHOTO, full.width, full.width // 4),
        "alpha": cut(ALPHA_PHOTO, alpha.width, alpha.height * 3 // 4),
    }


SHAPES = shapes()


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_placeholder_has_the_pictures_aspect(shape):
    data = SHAPES[shape]
    width, height = images.size(data)
    hash_b64 = placeholders.of_source(data)
    png = placeholders.png(hash_b64, width, height)
    w, h = Image.open(io.BytesIO(png)).size
    assert max(w, h) == placeholders.LONG_SIDE
    assert same_aspect((w, h), (width, height))
    # the hash's own, coarse record of the aspect (luminance terms across and down, 1..7 each) agrees
    recorded = thumbhash.aspect(base64.b64decode(hash_b64))
    assert abs(np.log(recorded / (width / height))) < np.log(7 / 5.5), (recorded, width / height)
    assert (shape == "alpha") == thumbhash.has_alpha(base64.b64decode(hash_b64))
    assert Image.open(io.BytesIO(png)).mode == ("RGBA" if shape == "alpha" else "RGB")


@pytest.mark.parametrize("path", [*images.PHOTOS, images.PHOTO_DIR / "abstract" / "Elephants.jpg"],
                         ids=lambda p: p.stem)
def test_the_placeholders_average_colour_is_the_photos(path):
    data = path.read_bytes()
    width, height = images.size(data)
    hash_b64 = placeholders.of_source(data)
    photo = rgba(pyvips.Image.thumbnail_buffer(data, 256).pngsave_buffer())[..., :3].mean(axis=(0, 1))
    drawn = rgba(placeholders.png(hash_b64, width, height))[..., :3].mean(axis=(0, 1))
    assert np.abs(drawn - photo).max() < 0.05, (drawn * 255, photo * 255)
    recorded = np.array(thumbhash.average(base64.b64decode(hash_b64))[:3])
    assert np.abs(recorded - photo).max() < 0.05, (recorded * 255, photo * 255)
    assert len(base64.b64decode(hash_b64)) <= 25  # 5 header bytes and 4 bits per cosine term


def test_a_transparent_photo_keeps_its_transparency():
    data = SHAPES["alpha"]
    width, height = images.size(data)
    original = rgba(pyvips.Image.thumbnail_buffer(data, 256).pngsave_buffer())
    drawn = rgba(placeholders.png(placeholders.of_source(data), width, height))
    assert abs(drawn[..., 3].mean() - original[..., 3].mean()) < 0.08
    opaque = original[..., 3].mean() > 0.9
    assert not opaque and drawn[..., 3].min() < 0.5  # transparent where the picture is


def test_the_encoder_refuses_what_it_is_not_made_for():
    with pytest.raises(ValueError):
        thumbhash.encode(np.zeros((101, 50, 4), np.uint8))
    with pytest.raises(ValueError):
        thumbhash.encode(np.zeros((50, 50, 3), np.uint8))


# --- through the worker, both catalogs -----------------------------------------------------------

@pytest.fixture
def host(tmp_path, catalog_url):
    return make_host(tmp_path, catalog_url, api_keys="placeholder-key:alice")


def test_the_worker_keeps_the_thumbhash_with_the_content_and_the_api_answers_it(host):
    data = PHOTO.read_bytes()
    first = host.upload(data)
    alias = host.upload(data)  # the same bytes: an exact alias shares its content's placeholder
    record = host.record(first)
    assert record.state == "ready" and host.record(alias).content_id == record.content_id
    stored = host.catalog.get_content(record.content).thumbhash
    assert stored and len(base64.b64decode(stored)) <= 25
    assert fallback.read(host.store, first).thumbhash == stored  # survives a catalog outage
    assert fallback.read(host.store, alias).thumbhash == stored
    client = host.client()
    for image_id in (first, alias):
        answer = client.simulate_get(f"/v1/images/{image_id}", headers=API).json
        assert answer["thumbhash"] == stored
        assert answer["placeholder"] == placeholders.data_uri(stored, record.width, record.height)
        assert answer["placeholder"].startswith("data:image/png;base64,")
        assert answer["urls"]["placeholder"].endswith(f"/images/{image_id}/placeholder")
    listed = client.simulate_get("/v1/images", headers=API).json["items"]
    assert {item["thumbhash"] for item in listed} == {stored}
    png = client.simulate_get(f"/images/{first}/placeholder")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert png.content == base64.b64decode(answer["placeholder"].split(",", 1)[1])
    again = client.simulate_get(f"/images/{first}/placeholder", headers={"If-None-Match": png.headers["etag"]})
    assert again.status_code == 304


def test_an_image_without_a_thumbhash_gets_one_on_its_first_placeholder_request(host):
    image_id = host.upload(PHOTO.read_bytes())
    content = host.record(image_id).content
    expected = host.catalog.get_content(content).thumbhash
    host.catalog._exec("UPDATE contents SET thumbhash = NULL WHERE id = ?", (content,))  # as before placeholders
    facts = json.loads(host.store.get(keys.record_key(image_id)))
    del facts["thumbhash"]  # a record fallback written before placeholders
    host.store.put(keys.record_key(image_id), json.dumps(facts).encode(), "application/json")
    assert fallback.read(host.store, image_id).thumbhash is None
    client = host.client()
    answer = client.simulate_get(f"/v1/images/{image_id}", headers=API).json
    assert answer["thumbhash"] is None and answer["urls"]["placeholder"]
    png = client.simulate_get(f"/images/{image_id}/placeholder")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    made = host.catalog.get_content(content).thumbhash
    assert made  # kept: the next request reads it
    # made from the smallest render source, not the same pixels as at ingest: the same picture all the same
    assert np.abs(np.array(thumbhash.average(base64.b64decode(made))) -
                  np.array(thumbhash.average(base64.b64decode(expected)))).max() < 0.05
    assert client.simulate_get(f"/v1/images/{image_id}", headers=API).json["thumbhash"] == made


def test_a_placeholder_request_is_refused_like_any_delivery_url(host):
    client = host.client()
    assert client.simulate_get("/images/nosuchimage1/placeholder").status_code == 404
    bad = client.simulate_get("/images/a/placeholder")
    assert bad.status_code == 400 and bad.json["error"] == "invalid_request"


def test_the_bulk_import_makes_the_thumbhash_from_its_decode(host):
    from origin.ingest.originals import ingest
    from origin.ingest.validate import Limits

    for data in (SHAPES["portrait"], images.hevc_heic(), images.animated_gif()):
        record = ingest(data, host.store, host.catalog, limits=Limits.from_settings(host.settings),
                        intermediate_sizes=host.settings.intermediate_sizes)
        stored = host.catalog.get_content(record.content).thumbhash
        assert stored and fallback.read(host.store, record.id).thumbhash == stored
        w, h = Image.open(io.BytesIO(placeholders.png(stored, record.width, record.height))).size
        assert same_aspect((w, h), (record.width, record.height))


# --- through the nginx edge, in front of a real gunicorn origin -----------------------------------

def test_the_placeholder_is_served_through_the_edge_cached_immutable(tmp_path):
    from origin.config import Settings
    from tests.servers import start_edge, start_edge_origin, stop

    origin = start_edge_origin(tmp_path / "var")
    try:
        result = origin.ingest(PHOTO)
        assert result.returncode == 0, result.stderr
        image_id = json.loads(result.stdout.splitlines()[0])["id"]
        edge = start_edge(Settings.from_env(origin.env), int(origin.url.rsplit(":", 1)[1]), tmp_path / "edge")
        try:
            url = f"{edge.url}/images/{image_id}/placeholder"
            first, second = requests.get(url, timeout=30), requests.get(url, timeout=30)
            assert first.status_code == 200 and first.headers["Content-Type"] == "image/png"
            assert first.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert "Vary" not in first.headers  # one entry per image, whatever the Accept
            assert [first.headers["X-Cache-Status"], second.headers["X-Cache-Status"]] == ["MISS", "HIT"]
            assert first.content == second.content and Image.open(io.BytesIO(first.content)).format == "PNG"
            assert same_aspect(Image.open(io.BytesIO(first.content)).size, images.size(PHOTO.read_bytes()))
            for other in ("placeholder.png", "placeholder2", "Placeholder"):  # refused at the edge
                refused = requests.get(f"{edge.url}/images/{image_id}/{other}", timeout=30)
                assert refused.status_code == 400 and refused.json()["error"] == "invalid_request", other
            log = (origin.data_dir / "gunicorn.log").read_text()  # the origin logs every path it answers
            assert f"/images/{image_id}/placeholder\"" in log and f"/images/{image_id}/placeholder." not in log
        finally:
            stop(edge.proc)
    finally:
        stop(origin.proc)


def test_a_host_that_requires_signatures_signs_and_checks_the_placeholder(tmp_path, catalog_url):
    host = make_host(tmp_path, catalog_url, api_keys="placeholder-key:alice", signing_required=True,
                     signing_keys="k1:placeholder-secret")
    image_id = host.upload(PHOTO.read_bytes())
    client = host.client()
    path = f"/images/{image_id}/placeholder"
    assert client.simulate_get(path).status_code == 403  # unsigned
    signed = client.simulate_post("/v1/sign", headers=API, json={"paths": [path], "expires_in": 60})
    assert signed.status_code == 200, signed.text
    url = signed.json["urls"][0]
    query = url.split("?", 1)[1]
    answer = client.simulate_get(path, query_string=query)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    bad = client.simulate_post("/v1/sign", headers=API, json={"paths": ["/images/a/placeholder"], "expires_in": 60})
    assert bad.status_code == 400 and bad.json["error"] == "invalid_request"
