"""The catalog's usage table and maintenance guard, on SQLite and on the real PostgreSQL."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from origin.ports.catalog import Content, ImageRecord, MaintenanceBusy, UsageNote
from origin.wiring import open_catalog
from tests.servers import ROOT


@pytest.fixture
def catalog(catalog_url):
    cat = open_catalog(catalog_url)
    yield cat
    cat.close()


def add_content(catalog, image_id: str, sha: str, size: int = 1000, owner: str = "o") -> None:
    catalog.add(ImageRecord(id=image_id, content_type="image/jpeg", width=10, height=10, bytes=size, sha256=sha,
                            state="requested", owner=owner, created_at=datetime.now(timezone.utc)))
    catalog.attach(image_id, Content(id=image_id, sha256=sha, content_type="image/jpeg", width=10, height=10,
                                     bytes=size), ("requested",))
    catalog.transition(image_id, ("requested",), "ready")


def test_notes_add_up_and_keep_the_latest_access(catalog):
    add_content(catalog, "content01", "a" * 64)
    add_content(catalog, "content02", "b" * 64)
    assert catalog.note_usage([UsageNote("content01", 100.0, 5000, frozenset({"w300.webp"})),
                               UsageNote("content01", 90.0, 1000, frozenset({"w600.webp"})),
                               UsageNote("content02", 50.0)]) == 0
    catalog.note_usage([UsageNote("content01", 80.0, 700, frozenset({"w150.webp"}))])  # an older access
    first = catalog.get_usage("content01")
    assert (first.last_access, first.variant_bytes) == (100.0, 6700)
    assert catalog.usage_total() == 6700
    assert [u.content_id for u in catalog.coldest(10, before=1e9)] == ["content01"]  # content02 holds no bytes
    catalog.note_usage([UsageNote("content02", 60.0, 10)])
    assert [u.content_id for u in catalog.coldest(10, before=1e9)] == ["content02", "content01"]
    assert [u.content_id for u in catalog.coldest(10, before=70.0)] == ["content02"]  # read too recently
    page = catalog.coldest(1, before=1e9)
    assert [u.content_id for u in catalog.coldest(1, before=1e9, after=(page[0].last_access,
                                                                        page[0].content_id))] == ["content01"]


def test_eviction_marks_count_re_renders(catalog):
    add_content(catalog, "content03", "c" * 64)
    catalog.note_usage([UsageNote("content03", 10.0, 900, frozenset({"w300.webp", "w600.avif"}))])
    catalog.mark_evicting("content03", ["w300.webp", "w600.avif"], 20.0)
    catalog.mark_evicting("content03", ["w600.avif", "original.jpg"], 21.0)  # a rerun adds, never loses
    catalog.mark_evicted("content03")
    usage = catalog.get_usage("content03")
    assert usage.variant_bytes == 0 and usage.evicted == {"w300.webp", "w600.avif", "original.jpg"}
    # renders of two of them again (and one never evicted): two re-renders, counted once
    assert catalog.note_usage([UsageNote("content03", 30.0, 400, frozenset({"w300.webp", "w600.avif",
                                                                            "w1200.webp"}))]) == 2
    assert catalog.note_usage([UsageNote("content03", 31.0, 100, frozenset({"w300.webp"}))]) == 0
    assert catalog.get_usage("content03").evicted == {"original.jpg"}


def test_reconcile_prune_and_dedup_summary(catalog):
    add_content(catalog, "content04", "d" * 64, size=4000)
    add_content(catalog, "alias004", "d" * 64, size=4000)  # same bytes: an exact alias of content04
    assert catalog.get("alias004").content_id == "content04"
    catalog.set_usage_bytes({"content04": (12345, 77.0), "gone0000": (5, 1.0)})
    assert catalog.get_usage("content04").variant_bytes == 12345
    catalog.set_usage_bytes({"content04": (100, 99.0)})  # exact figures replace the estimate
    assert (catalog.get_usage("content04").variant_bytes, catalog.get_usage("content04").last_access) == (100, 77.0)
    assert catalog.prune_usage() == 1 and catalog.get_usage("gone0000") is None
    summary = catalog.dedup_summary()
    assert (summary.records, summary.contents, summary.exact_aliases, summary.exact_bytes) == (2, 1, 1, 4000)
    assert (summary.collapsed_records, summary.collapsed_contents) == (0, 0)


def test_maintenance_lock_is_exclusive_and_dies_with_its_holder(catalog, catalog_url):
    with catalog.maintenance_lock():
        other = open_catalog(catalog_url)
        try:
            with pytest.raises(MaintenanceBusy):
                with other.maintenance_lock():
                    pass
        finally:
            other.close()
    with catalog.maintenance_lock():  # released on exit
        pass
    # a holder killed with SIGKILL releases it: the next run never waits for an expiry
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from origin.wiring import open_catalog\n"
         "c = open_catalog(sys.argv[1])\nwith c.maintenance_lock():\n print('held', flush=True)\n time.sleep(60)",
         catalog_url], cwd=ROOT, stdout=subprocess.PIPE, text=True, env=os.environ)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(MaintenanceBusy):
            with catalog.maintenance_lock():
                pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        deadline = time.monotonic() + 10
        while True:
            try:
                with catalog.maintenance_lock():
                    break
            except MaintenanceBusy:
                assert time.monotonic() < deadline, "the lock outlived its killed holder"
                time.sleep(0.1)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
