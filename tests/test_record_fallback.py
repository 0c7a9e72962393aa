"""A miss while the catalog is down: a ready image still renders from the record fallback kept in
the store (origin/pipeline/fallback.py); a deleted, held or unknown image is never served (503, as
nobody can tell). The catalog here is the real SQLite one behind a switch that makes it fail the way
an unreachable database does; tests/test_cluster_faults.py stops a real PostgreSQL."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest
from falcon import testing

from origin import keys
from origin.app import create_app
from origin.errors import CatalogUnavailable
from origin.http.images import remove_image
from origin.ingest.originals import ingest
from origin.ingest.validate import Limits
from origin.lifecycle import usage
from origin.pipeline import fallback
from origin.pipeline.records import Records
from origin.wiring import open_catalog, open_store
from tests import images


class Switchable:
    """A real catalog that can be made unreachable."""

    def __init__(self, catalog):
        self._catalog = catalog
        self.down = False
        self.calls: list[str] = []

    def __getattr__(self, name):
        attr = getattr(self._catalog, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self.calls.append(name)
            if self.down:
                raise CatalogUnavailable("sqlite catalog: unable to open database file")
            return attr(*args, **kwargs)

        return call


@pytest.fixture
def host(settings, metrics):
    settings = replace(settings, record_cache_seconds=0.2)
    store, real = open_store(settings), open_catalog(settings.catalog)
    catalog = Switchable(real)
    app = create_app(settings, store, catalog, metrics)

    class Host:
        client = testing.TestClient(app)

        def add(self, data: bytes, **kw) -> str:
            return ingest(data, store, real, limits=Limits.from_settings(settings), **kw).id

    Host.store, Host.catalog, Host.real, Host.metrics = store, catalog, real, metrics
    yield Host()
    catalog.down = False  # a test may leave it down: the notes its renders made go out now, not at exit
    usage.flush_all()
    real.close()


def test_a_record_cache_miss_is_one_catalog_read(host):
    data = images.jpeg(images.scene(640, 480))
    first, alias = host.add(data), host.add(data)
    records = Records(host.catalog, host.store, cache_seconds=60)
    for image_id in (first, alias):
        host.catalog.calls.clear()
        served = records.get(image_id)
        assert host.catalog.calls == ["get_with_content"]
        assert (served.id, served.content_id, served.width, served.height) == (image_id, first, 640, 480)
        assert served.thumbhash and records.get(image_id) is served and host.catalog.calls == ["get_with_content"]


def test_a_ready_image_renders_while_the_catalog_is_down(host):
    image_id = host.add(images.jpeg(images.scene(640, 480)))
    assert host.store.exists(keys.record_key(image_id))
    assert host.client.simulate_get(f"/images/{image_id}/w150.webp").status_code == 200  # up: warm
    host.catalog.down = True
    time.sleep(0.3)  # the record cache has expired: only the fallback knows it now
    for variant in ("w300.webp", "w600.jpeg", "sq64.avif", "original"):
        resp = host.client.simulate_get(f"/images/{image_id}/{variant}")
        assert resp.status_code == 200, (variant, resp.text)
    assert images.size(host.client.simulate_get(f"/images/{image_id}/w300.webp").content)[0] == 300
    ready = host.client.simulate_get("/readyz")
    assert ready.status_code == 503 and "catalog" in ready.json["checks"]["catalog"]
    assert "imagehost_record_fallbacks_total" in host.metrics.exposition().decode()


def test_the_fallback_names_the_content_an_alias_serves(host):
    data = images.jpeg(images.scene(640, 480))
    first, alias = host.add(data), host.add(data)
    assert fallback.read(host.store, alias).content_id == first
    host.catalog.down = True
    assert host.client.simulate_get(f"/images/{alias}/w300.webp").status_code == 200


def test_a_deleted_image_is_never_served_from_the_fallback(host):
    data = images.jpeg(images.scene(640, 480))
    kept, deleted = host.add(data), host.add(data)  # an alias: the bytes stay for the other record
    remove_image(host.store, host.real, None, lambda _id: None, deleted)
    assert not host.store.exists(keys.record_key(deleted))
    host.catalog.down = True
    time.sleep(0.3)
    gone = host.client.simulate_get(f"/images/{deleted}/w300.webp")
    assert gone.status_code == 503 and gone.json["error"] == "catalog_unavailable"
    assert host.client.simulate_get(f"/images/{kept}/w300.webp").status_code == 200


def test_a_held_image_has_no_fallback(host):
    held = host.add(images.jpeg(images.scene(640, 480)), state="held")
    assert not host.store.exists(keys.record_key(held))
    host.catalog.down = True
    answer = host.client.simulate_get(f"/images/{held}/w300.webp")
    assert answer.status_code == 503 and answer.json["error"] == "catalog_unavailable"


def test_an_unknown_image_is_503_while_the_catalog_is_down_and_404_after(host):
    host.catalog.down = True
    assert host.client.simulate_get("/images/NoSuchImage1/w300.webp").status_code == 503
    host.catalog.down = False
    deadline = time.monotonic() + 10  # the probe notices within a second
    while host.client.simulate_get("/images/NoSuchImage1/w300.webp").status_code != 404:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_deletion_stops_before_the_catalog_when_the_store_refuses(host, monkeypatch):
    image_id = host.add(images.jpeg(images.scene(640, 480)))
    from origin.errors import StoreUnavailable

    def refuse(key):
        raise StoreUnavailable("store down")

    monkeypatch.setattr(host.store, "delete", refuse)
    with pytest.raises(StoreUnavailable):
        remove_image(host.store, host.real, None, lambda _id: None, image_id)
    assert host.real.get(image_id).state == "ready"  # nothing was deleted
