"""The local read-through cache in front of S3 (moto over HTTP): immutable objects come from local
disk, changing ones always from S3, the budget holds, and a miss keeps rendering while the path to
S3 is cut (edge/tcpproxy.py: moto keeps its state, the origin cannot reach it)."""
from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest
from falcon import testing

from edge.tcpproxy import TcpProxy
from origin import keys
from origin.app import create_app
from origin.ingest.originals import ingest
from origin.ingest.validate import Limits
from origin.ports.store_cache import CachedStore
from origin.ports.store_s3 import S3Store
from origin.wiring import open_catalog
from tests import images


@pytest.fixture
def cut_s3(moto_server):
    """An S3Store on a fresh moto bucket, reached through a proxy the test can cut."""
    target = urlsplit(moto_server)
    proxy = TcpProxy(("127.0.0.1", 0), (target.hostname, target.port)).start()
    store = S3Store(f"cache-{uuid.uuid4().hex[:12]}", endpoint_url=proxy.url)
    store.client.create_bucket(Bucket=store.bucket)
    yield store, proxy
    proxy.cut()


def test_immutable_objects_are_read_locally_and_changing_ones_from_s3(cut_s3, tmp_path):
    s3, proxy = cut_s3
    cached = CachedStore(s3, tmp_path / "cache", 10 * 1024 * 1024)
    cached.put("images/C0ntent1/source.jpg", b"source", "image/jpeg")
    s3.put(keys.record_key("Rec0rd12"), b'{"v": 1}', "application/json")
    assert cached.get(keys.record_key("Rec0rd12")) == b'{"v": 1}'
    s3.put(keys.record_key("Rec0rd12"), b'{"v": 2}', "application/json")
    assert cached.get(keys.record_key("Rec0rd12")) == b'{"v": 2}'  # never a stale copy of what changes
    proxy.cut()
    assert cached.get("images/C0ntent1/source.jpg") == b"source"  # S3 out of reach: the local copy
    assert cached.exists("images/C0ntent1/source.jpg")
    proxy.restore()
    cached.delete_prefix("images/C0ntent1/")
    assert not (tmp_path / "cache" / "images" / "C0ntent1").exists() and not s3.exists("images/C0ntent1/source.jpg")


def test_the_budget_keeps_the_most_recently_read(cut_s3, tmp_path):
    s3, _ = cut_s3
    cached = CachedStore(s3, tmp_path / "cache", 100_000)
    for n in range(30):
        cached.put(f"images/C0ntent{n:02d}/w300.webp", bytes([n]) * 9_000, "image/webp")
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 100_000
    assert (tmp_path / "cache" / "images" / "C0ntent29" / "w300.webp").exists()  # the newest stays
    assert not (tmp_path / "cache" / "images" / "C0ntent00" / "w300.webp").exists()
    assert cached.get("images/C0ntent00/w300.webp") == bytes([0]) * 9_000  # trimmed: S3 still has it


def test_a_miss_renders_while_s3_is_out_of_reach(cut_s3, tmp_path, settings, metrics):
    s3, proxy = cut_s3
    store = CachedStore(s3, tmp_path / "cache", 64 * 1024 * 1024, metrics)
    catalog = open_catalog(settings.catalog)
    client = testing.TestClient(create_app(settings, store, catalog, metrics))
    limits = Limits.from_settings(settings)
    seen = ingest(images.jpeg(images.scene(800, 600)), store, catalog, limits=limits).id
    unseen = ingest(images.jpeg(images.scene(640, 480)), s3, catalog, limits=limits).id  # never through the cache
    assert client.simulate_get(f"/images/{seen}/w300.webp").status_code == 200
    proxy.cut()
    fresh = client.simulate_get(f"/images/{seen}/w600.jpeg")  # its source is local: rendered, not stored
    assert fresh.status_code == 200 and images.size(fresh.content) == (600, 450)
    assert "imagehost_unstored_renders_total 1.0" in metrics.exposition().decode()
    down = client.simulate_get(f"/images/{unseen}/w300.webp")
    assert down.status_code == 503 and down.json["error"] == "store_unavailable"
    proxy.restore()
    assert client.simulate_get(f"/images/{unseen}/w300.webp").status_code == 200
    assert not s3.exists(keys.variant_key(seen, "w600", "jpeg"))  # it was never stored
    assert client.simulate_get(f"/images/{seen}/w600.jpeg").status_code == 200
    assert s3.exists(keys.variant_key(seen, "w600", "jpeg"))  # the next miss stored it
    catalog.close()


def test_serving_a_stored_variant_copies_in_the_images_smallest_source(cut_s3, tmp_path, settings, metrics):
    """So the origin the edge routes this image to can render its other variants while S3 is cut."""
    import time

    s3, proxy = cut_s3
    limits = Limits.from_settings(settings)
    catalog = open_catalog(settings.catalog)
    image_id = ingest(images.jpeg(images.scene(3000, 2000)), s3, catalog, limits=limits,
                      intermediate_sizes=settings.intermediate_sizes).id  # into S3 alone
    elsewhere = testing.TestClient(create_app(settings, s3, catalog, metrics))  # another origin renders one
    assert elsewhere.simulate_get(f"/images/{image_id}/w300.webp").status_code == 200
    store = CachedStore(s3, tmp_path / "cache", 64 * 1024 * 1024, metrics)
    client = testing.TestClient(create_app(settings, store, catalog, metrics))
    hits = metrics.store_lookups.labels("hit")._value.get()
    assert client.simulate_get(f"/images/{image_id}/w300.webp").status_code == 200  # served from S3
    assert metrics.store_lookups.labels("hit")._value.get() == hits + 1
    rung = tmp_path / "cache" / "images" / image_id / "intermediate.1200.jpg"
    deadline = time.monotonic() + 10
    while not rung.exists():
        assert time.monotonic() < deadline, "the smallest intermediate was not copied in"
        time.sleep(0.05)
    proxy.cut()
    for variant in ("w600.webp", "w1200.jpeg", "sm300.avif"):  # from the local rung, S3 out of reach
        assert client.simulate_get(f"/images/{image_id}/{variant}").status_code == 200, variant
    proxy.restore()
    catalog.close()


def test_an_outage_miss_whose_source_is_not_here_gets_a_stand_in_from_a_smaller_rung(cut_s3, tmp_path, settings,
                                                                                      metrics):
    """The 2400-px rung and the original were never read here; the 1200-px rung was: with S3 cut, a
    w2400, the original and a hero (fit 2400x1600) are rendered from it, never upscaled, briefly
    cacheable, not stored; once S3 is back the real renders are served and stored."""
    s3, proxy = cut_s3
    limits = Limits.from_settings(settings)
    catalog = open_catalog(settings.catalog)
    image_id = ingest(images.jpeg(images.scene(3000, 2000)), s3, catalog, limits=limits,
                      intermediate_sizes=settings.intermediate_sizes).id
    store = CachedStore(s3, tmp_path / "cache", 64 * 1024 * 1024, metrics)
    client = testing.TestClient(create_app(settings, store, catalog, metrics))
    assert client.simulate_get(f"/images/{image_id}/w600.webp").status_code == 200  # reads the 1200-px rung
    assert (tmp_path / "cache" / "images" / image_id / "intermediate.1200.jpg").is_file()
    assert not (tmp_path / "cache" / "images" / image_id / "intermediate.jpg").exists()
    proxy.cut()
    for variant, size in (("w2400.webp", (1200, 800)), ("original", (1200, 800)), ("hero.jpeg", (1200, 800)),
                          ("card.webp", (800, 450))):
        answer = client.simulate_get(f"/images/{image_id}/{variant}")
        assert answer.status_code == 200, (variant, answer.text)
        assert images.size(answer.content) == size, variant
        if variant != "card.webp":  # the card is served by the local rung itself: a real render
            assert answer.headers["cache-control"] == f"public, max-age={settings.fallback_max_age}, " \
                f"stale-while-revalidate={settings.fallback_max_age * 6}", variant
            assert answer.headers["server-timing"] == "standin", variant
    negotiated = client.simulate_get(f"/images/{image_id}/w2400", headers={"Accept": "image/avif,image/webp,*/*"})
    assert negotiated.status_code == 200 and images.size(negotiated.content) == (1200, 800)
    assert negotiated.headers["vary"] == "Accept" and negotiated.headers["server-timing"] == "standin"
    assert metrics.outage_answers.labels("standin")._value.get() == 4
    proxy.restore()
    real = client.simulate_get(f"/images/{image_id}/w2400.webp")
    assert real.status_code == 200 and images.size(real.content) == (2400, 1600)
    assert "max-age=31536000" in real.headers["cache-control"]
    assert not s3.exists(keys.variant_key(image_id, "original", "jpeg"))  # stand-ins are never stored
    assert s3.exists(keys.variant_key(image_id, "w2400", "webp"))
    assert images.size(client.simulate_get(f"/images/{image_id}/original").content) == (3000, 2000)
    assert s3.exists(keys.variant_key(image_id, "original", "jpeg"))
    catalog.close()


def test_an_outage_miss_with_no_smaller_picture_here_is_a_503(cut_s3, tmp_path, settings, metrics):
    s3, proxy = cut_s3
    catalog = open_catalog(settings.catalog)
    image_id = ingest(images.jpeg(images.scene(3000, 2000)), s3, catalog, limits=Limits.from_settings(settings),
                      intermediate_sizes=settings.intermediate_sizes).id  # nothing of it read here
    client = testing.TestClient(create_app(settings, CachedStore(s3, tmp_path / "cache", 1 << 26, metrics),
                                           catalog, metrics))
    proxy.cut()
    down = client.simulate_get(f"/images/{image_id}/w2400.webp")
    assert down.status_code == 503 and down.json["error"] == "store_unavailable" and down.headers["retry-after"]
    assert metrics.outage_answers.labels("unavailable")._value.get() == 1
    proxy.restore()
    catalog.close()
