"""Booting: workers never race on a fresh catalog, a busy lock is waited out, and an origin whose
catalog is down at start still starts (its master stays up, /readyz names what is down)."""
from __future__ import annotations

import multiprocessing
import time

import requests

from origin.ports.catalog_sqlite import SqliteCatalog
from tests.servers import EDGE_ORIGIN_ENV, free_port, start_origin, stop


def _open_at_once(path, barrier, results) -> None:
    barrier.wait()
    try:
        SqliteCatalog(path).ping()
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 (reported to the test)
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_fresh_catalog_at_once_all_succeed(tmp_path):
    """Gunicorn workers booting together: before the busy retries, 4 of 80 such opens failed
    with "database is locked" (PRAGMA journal_mode=WAL does not wait on the busy handler)."""
    context = multiprocessing.get_context("fork")
    failures = []
    for attempt in range(10):
        path = tmp_path / f"catalog{attempt}.sqlite3"
        barrier, results = context.Barrier(8), context.Queue()
        procs = [context.Process(target=_open_at_once, args=(path, barrier, results)) for _ in range(8)]
        for proc in procs:
            proc.start()
        outcomes = [results.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join()
        failures += [o for o in outcomes if o != "ok"]
    assert not failures, failures


def test_a_catalog_is_prepared_on_first_use_not_when_made(tmp_path):
    unreachable = tmp_path / "file-not-dir"
    unreachable.write_text("")
    catalog = SqliteCatalog(unreachable / "catalog.sqlite3")  # making it touches nothing
    from origin.errors import CatalogUnavailable

    try:
        catalog.ping()
    except CatalogUnavailable as exc:
        assert "catalog" in exc.message
    else:
        raise AssertionError("a catalog under a file cannot be opened")


def test_many_workers_boot_together_on_a_fresh_sqlite_catalog(tmp_path):
    for attempt in range(3):
        origin = start_origin(tmp_path / f"var{attempt}", EDGE_ORIGIN_ENV, workers=5)
        try:
            ready = requests.get(origin.url + "/readyz", timeout=10)
            assert ready.status_code == 200, ready.text
            time.sleep(1.0)  # a worker that failed to boot would have stopped the master by now
            assert origin.proc.poll() is None, (origin.data_dir / "gunicorn.log").read_text()[-2000:]
            assert "Worker failed to boot" not in (origin.data_dir / "gunicorn.log").read_text()
        finally:
            stop(origin.proc)


def test_an_origin_whose_catalog_is_down_starts_and_says_so(tmp_path):
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    env = {"IMAGEHOST_CATALOG_URL": down, "IMAGEHOST_SCAN": "0", "IMAGEHOST_MODERATION": "off"}
    origin = start_origin(tmp_path / "var", env, workers=2)  # worker threads on: they wait, they do not crash
    try:
        assert requests.get(origin.url + "/healthz", timeout=10).status_code == 200
        ready = requests.get(origin.url + "/readyz", timeout=10)
        assert ready.status_code == 503 and ready.headers["Retry-After"]
        assert ready.json()["checks"]["store"] == "ok"
        assert "postgres" in ready.json()["checks"]["catalog"]
        read = requests.get(origin.url + "/images/abcdefgh/w300.webp", timeout=10)
        assert read.status_code == 503 and read.json()["error"] == "catalog_unavailable"
        time.sleep(2.0)
        assert origin.proc.poll() is None
        assert "not reachable at start" in (origin.data_dir / "gunicorn.log").read_text()
    finally:
        stop(origin.proc)
