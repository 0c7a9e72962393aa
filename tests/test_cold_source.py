"""A render whose source sits in GLACIER (an operator's rule), against a real moto server over HTTP:
the restore is requested; a stand-in renders under a short lifetime, or the answer is a 503 with
Retry-After; once restored, the real render is stored and cached for a year. Never a 500.
(moto completes a restore at once, so the request after the one that asked for it finds the source
readable, as a request after Retry-After would on S3.)"""
from __future__ import annotations

import pytest
from falcon import testing

from origin.app import create_app
from origin.lifecycle.restore import ETA
from origin.pipeline.variants import render_source_key
from tests import images
from tests.lifecycle_host import make_host, photo


@pytest.fixture
def host(tmp_path, s3_store):
    # no local read-through cache: it would still hold the freshly written source
    return make_host(tmp_path, store="s3", s3_bucket=s3_store.bucket, s3_prefix="tenant-a",
                     s3_endpoint_url=s3_store.endpoint_url, api_keys="key-alice:alice", restore_tier="Standard",
                     store_cache_bytes=0)


def client(host) -> testing.TestClient:
    return testing.TestClient(create_app(host.settings, host.store, host.catalog, host.metrics))


def archive(host, image_id: str) -> str:
    """What an operator's rule (originals → GLACIER) does to the image's source (a fresh copy in
    GLACIER, no restore)."""
    key = render_source_key(host.catalog.get(image_id))
    host.store.set_tier(key, "GLACIER")
    assert host.objects(image_id)[key.rpartition("/")[2]].tier == "GLACIER"
    return key


def restore_state(host, key: str) -> str:
    head = host.store.client.head_object(Bucket=host.store.bucket, Key=host.store.prefix + key)
    return head.get("Restore", "")


def test_no_stand_in_is_a_503_with_retry_after_and_a_restore_requested(host):
    image_id = host.upload(photo(0))
    key = archive(host, image_id)
    app = client(host)
    answer = app.simulate_get(f"/images/{image_id}/w600.webp")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == str(ETA[("GLACIER", "Standard")])
    assert answer.json["error"] == "source_archived" and answer.json["tier"] == "GLACIER"
    assert "no-store" in answer.headers["Cache-Control"]
    assert "ongoing-request" in restore_state(host, key)  # the restore was requested

    served = app.simulate_get(f"/images/{image_id}/w600.webp")  # restored: the real render, stored
    assert served.status_code == 200 and images.size(served.content)[0] == 600
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "w600.webp" in host.objects(image_id)
    assert host.metrics.cold_answers.labels("unavailable")._value.get() == 1


def test_the_owner_download_of_an_archived_upload_waits_for_its_restore(host):
    image_id = host.upload(photo(2))
    key = archive(host, image_id)
    app = client(host)
    owner = {"Authorization": "Bearer key-alice"}
    download = app.simulate_get(f"/v1/images/{image_id}/original", headers=owner)
    assert download.status_code == 503 and download.headers["Retry-After"] == str(ETA[("GLACIER", "Standard")])
    assert "ongoing-request" in restore_state(host, key)
    assert app.simulate_get(f"/v1/images/{image_id}/original", headers=owner).content == photo(2)


def archived_with_a_stored_variant(host, n: int):
    """An image whose w1200.webp was stored while it was warm, then archived: (id, app, its objects)."""
    image_id = host.upload(photo(n))
    app = client(host)
    assert app.simulate_get(f"/images/{image_id}/w1200.webp").status_code == 200
    archive(host, image_id)
    return image_id, app, set(host.objects(image_id))


def test_stored_variants_stand_in_under_a_short_lifetime(host):
    image_id, app, stored_before = archived_with_a_stored_variant(host, 1)

    small = app.simulate_get(f"/images/{image_id}/w300.avif")
    assert small.status_code == 200 and images.size(small.content)[0] == 300
    assert small.headers["Cache-Control"] == "public, max-age=300, stale-while-revalidate=1800"  # not a year: the real one comes later
    archive(host, image_id)
    thumb = app.simulate_get(f"/images/{image_id}/sq64.jpeg")  # not eager: from the stored sq64 square
    assert thumb.status_code == 200 and images.size(thumb.content) == (64, 64)
    assert thumb.headers["Cache-Control"] == "public, max-age=300, stale-while-revalidate=1800"
    archive(host, image_id)
    original = app.simulate_get(f"/images/{image_id}/original")  # not stored: the biggest stand-in, not upscaled
    assert original.status_code == 200 and images.size(original.content)[0] == 900
    assert original.headers["Cache-Control"] == "public, max-age=300, stale-while-revalidate=1800"
    assert set(host.objects(image_id)) == stored_before  # stand-ins are never stored
    assert host.metrics.cold_answers.labels("standin")._value.get() == 3

    real = app.simulate_get(f"/images/{image_id}/w300.avif")  # restored since
    assert real.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "w300.avif" in host.objects(image_id)


def test_a_preset_stands_in_from_a_stored_picture(host):
    image_id, app, stored_before = archived_with_a_stored_variant(host, 3)
    card = app.simulate_get(f"/images/{image_id}/card.webp")  # a default preset: fill 800x450 smart
    assert card.status_code == 200 and images.size(card.content) == (800, 450)
    assert card.headers["Cache-Control"] == "public, max-age=300, stale-while-revalidate=1800"
    assert set(host.objects(image_id)) == stored_before
    real = app.simulate_get(f"/images/{image_id}/card.webp")  # restored since
    assert real.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert any(name.startswith("p-card-") for name in host.objects(image_id))


def test_an_archived_animation_is_a_503_never_a_500(host):
    image_id = host.upload(images.animated_gif())
    app = client(host)
    assert app.simulate_get(f"/images/{image_id}/w150.webp").status_code == 200
    archive(host, image_id)
    answer = app.simulate_get(f"/images/{image_id}/w150.gif")
    assert answer.status_code == 503 and answer.json["error"] == "source_archived"


def test_an_archived_source_still_in_the_local_cache_renders_as_usual(tmp_path, s3_store):
    host = make_host(tmp_path, store="s3", s3_bucket=s3_store.bucket, s3_prefix="tenant-a",
                     s3_endpoint_url=s3_store.endpoint_url)  # the read-through cache in front of S3 is on
    image_id = host.upload(photo(3))
    archive(host, image_id)
    served = client(host).simulate_get(f"/images/{image_id}/w300.webp")
    assert served.status_code == 200
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
