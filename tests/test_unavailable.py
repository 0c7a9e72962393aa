"""A backing service that cannot be reached: the real app answers 503 with Retry-After,
/readyz names the failing part, /healthz stays 200."""
from __future__ import annotations

import time

from falcon import testing

from origin.app import create_app
from origin.ports.catalog import ImageRecord
from origin.ports.catalog_postgres import PostgresCatalog
from origin.ports.catalog_sqlite import SqliteCatalog
from origin.ports.store_local import LocalStore
from origin.ports.store_s3 import S3Store
from tests.servers import free_port

IMAGE_ID = "abcDEF123_-x"
VARIANT = f"/images/{IMAGE_ID}/w300.webp"


def ready_record() -> ImageRecord:
    return ImageRecord(IMAGE_ID, "image/jpeg", 640, 480, 1234, "00" * 32, state="ready")


def client_for(settings, metrics, store, catalog) -> testing.TestClient:
    return testing.TestClient(create_app(settings, store, catalog, metrics))


def timed_get(client, path):
    started = time.monotonic()
    result = client.simulate_get(path)
    assert time.monotonic() - started < 10, f"{path} took too long"
    return result


def assert_unavailable(result, code: str) -> None:
    assert result.status_code == 503, result.text
    assert result.headers["content-type"].startswith("application/json")
    assert result.json["error"] == code
    assert result.json["message"]
    assert int(result.headers["retry-after"]) > 0
    assert "immutable" not in result.headers.get("cache-control", "")  # a CDN must not keep it


def assert_readiness(client, failing: str, mention: str) -> None:
    ready = timed_get(client, "/readyz")
    assert ready.status_code == 503, ready.text
    assert ready.headers.get("retry-after")
    checks = ready.json["checks"]
    (healthy,) = {"store", "catalog"} - {failing}
    assert checks[healthy] == "ok", checks
    assert mention in checks[failing], checks
    health = timed_get(client, "/healthz")
    assert health.status_code == 200 and health.json == {"status": "ok"}


def test_catalog_unreachable(settings, metrics):
    catalog = PostgresCatalog(f"postgresql://postgres@127.0.0.1:{free_port()}/test")
    client = client_for(settings, metrics, LocalStore(settings.store_dir), catalog)
    assert_unavailable(timed_get(client, VARIANT), "catalog_unavailable")
    assert_readiness(client, failing="catalog", mention="postgres")
    catalog.close()


def test_store_unreachable(settings, metrics, aws_credentials):
    catalog = SqliteCatalog(settings.data_dir / "catalog.sqlite3")
    catalog.add(ready_record())
    store = S3Store("imagehost", endpoint_url=f"http://127.0.0.1:{free_port()}")
    client = client_for(settings, metrics, store, catalog)
    assert_unavailable(timed_get(client, VARIANT), "store_unavailable")
    assert_readiness(client, failing="store", mention=store.endpoint_url)
    catalog.close()


def test_reachable_backends_are_ready(settings, metrics, s3_store, postgres_url):
    """The control: the same app on a reachable S3 and PostgreSQL is ready, and an
    unknown image is simply not there (404, not 503)."""
    catalog = PostgresCatalog(postgres_url)
    client = client_for(settings, metrics, s3_store, catalog)
    ready = timed_get(client, "/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json["checks"] == {"store": "ok", "catalog": "ok"}
    result = timed_get(client, VARIANT)
    assert result.status_code == 404, result.text
    catalog.close()
