"""Variant eviction and transitions end to end: the worker's real steps make images, the real delivery
renders and reads them, `imagehost lifecycle` (in-process, and as a command killed with SIGKILL)
keeps lazy variants within the budget and moves objects colder, on the local store and on S3 (moto
over HTTP), with SQLite and the real PostgreSQL."""
from __future__ import annotations

import os
import time

import pytest

from origin import keys
from origin.lifecycle.evict import LOW_WATER
from tests.backends import forget_index, private_schema
from tests.lifecycle_host import make_host, photo

NAMES = ("w300.webp", "w600.webp", "w600.avif", "original", "card.webp")  # card: a default preset
DAY = 86400


@pytest.fixture(params=["local+sqlite", "s3+sqlite", "local+postgres"])
def host(request, tmp_path):
    place, db = request.param.split("+")
    extra = {}
    if place == "s3":
        plain = request.getfixturevalue("s3_store")
        extra = dict(store="s3", s3_bucket=plain.bucket, s3_prefix="tenant-a", s3_endpoint_url=plain.endpoint_url)
    if db == "postgres":
        with private_schema("evict") as url:
            yield make_host(tmp_path, url, **extra)
            forget_index(url)
    else:
        yield make_host(tmp_path, **extra)


def classes(host, image_id: str) -> set[str]:
    return {keys.object_class(obj.key) for obj in host.objects(image_id).values()}


def test_eviction_keeps_the_budget_by_last_access_and_never_breaks_a_url(host):
    ids = [host.upload(photo(n)) for n in range(4)]
    for image_id in ids:  # each content read in turn: the first is the least recently used
        for name in NAMES:
            host.get(image_id, name)
        time.sleep(0.01)
    host.flush()
    stored = {i: sum(o.size for n, o in host.objects(i).items() if keys.object_class(o.key) == "variant")
              for i in ids}
    assert host.catalog.usage_total() == sum(stored.values())  # the batched notes add up to the store
    thumbs_and_sources = {i: {n for n, o in host.objects(i).items() if keys.object_class(o.key) != "variant"}
                          for i in ids}
    assert all({"source.jpg", "sq64.webp", "sm64.avif"} <= names for names in thumbs_and_sources.values())

    budget = int(sum(stored.values()) * 0.6)
    report = host.lifecycle(now=time.time() + 2 * 3600, budget=budget)
    assert report.evicted_contents >= 1 and report.evicted_variants == len(NAMES) * report.evicted_contents
    evicted = ids[:report.evicted_contents]  # coldest first
    for image_id in evicted:
        assert classes(host, image_id) == {"source", "thumbnail"}, host.objects(image_id)
    for image_id in ids[report.evicted_contents:]:
        assert "variant" in classes(host, image_id)
    for image_id in ids:  # originals and eager thumbnails are never touched
        assert {n for n, o in host.objects(image_id).items() if keys.object_class(o.key) != "variant"} == \
            thumbs_and_sources[image_id]
    assert host.catalog.usage_total() <= budget * LOW_WATER
    assert host.metrics.evictions._value.get() == report.evicted_variants

    # an evicted variant is simply rendered again; the render is counted as caused by eviction
    before = host.renders()
    served = host.get(evicted[0], "w600.webp")
    assert served.data[:4] == b"RIFF" and host.renders() == before + 1
    host.get(evicted[0], "w300.webp")
    host.get(evicted[0], "w1200.webp")  # never stored before: not a re-render
    host.flush()
    assert host.metrics.eviction_rerenders._value.get() == 2

    again = host.lifecycle(now=time.time() + 2 * 3600, budget=budget)  # under the budget now: nothing to do
    assert again.evicted_variants == 0


def test_no_catalog_write_per_request(tmp_path):
    """Reads are noted in memory and written in batches: hundreds of hits, one flush."""
    host = make_host(tmp_path, access_flush_seconds=0.3)
    ids = [host.upload(photo(n)) for n in range(3)]
    for image_id in ids:
        host.get(image_id, "w300.webp")
    host.flush()
    calls = []
    real = host.catalog.note_usage
    host.catalog.note_usage = lambda notes: calls.append(len(notes)) or real(notes)
    started = time.monotonic()
    hits = 0
    while time.monotonic() - started < 1.0:
        for image_id in ids:
            host.get(image_id, "w300.webp")
            hits += 1
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hits > 300
    assert 1 <= len(calls) <= 6, calls  # one batch per flush interval, not one write per request
    assert all(n <= len(ids) for n in calls)  # one note per content, however many reads


def _age(host, days: float) -> None:
    """Make every stored object `days` old (what S3's clock would say after that long)."""
    then = time.time() - days * DAY
    for base in [host.store.root] + [root for _, root in host.store.roots]:
        if base.exists():
            for path in base.rglob("*"):
                if path.is_file():
                    os.utime(path, (then, then))


@pytest.mark.parametrize("stop_after", [1, 12, 30])
def test_lifecycle_killed_anywhere_then_rerun_finishes_and_every_url_serves(tmp_path, stop_after):
    """`imagehost lifecycle` SIGKILLed after N moves or deletions (during transitions, during
    eviction), then run again: the job is finished and every URL still serves the same picture."""
    host = make_host(tmp_path, lifecycle_min_bytes=0, variant_budget="40K")
    ids = [host.upload(photo(n)) for n in range(3)]
    served = {(i, n): host.get(i, n).data for i in ids for n in NAMES}
    _age(host, 400)  # a year and more: sources to Glacier IR, the rest to Standard-IA, variants over budget
    moves = sum(len(host.objects(i)) for i in ids)  # every object under images/ is due
    variants = sum(1 for i in ids for o in host.objects(i).values() if keys.object_class(o.key) == "variant")

    killed = host.command("lifecycle", lifecycle_stop_after=stop_after)
    assert killed.returncode == -9, killed.stderr[-2000:]
    after = [o for i in ids for o in host.objects(i).values()]
    deleted = variants - sum(keys.object_class(o.key) == "variant" for o in after)
    assert deleted == max(0, stop_after - moves)  # killed mid-way through eviction (after every move) …
    assert sum(o.tier != "STANDARD" for o in after) + deleted == min(stop_after, moves)  # … or through the moves
    for (image_id, name), data in served.items():  # mid-way: everything still serves
        assert host.get(image_id, name).data[:8] == data[:8]
    done = host.command("lifecycle")
    assert done.returncode == 0, done.stderr[-2000:]
    fresh = 0
    for obj in (o for i in ids for o in host.objects(i).values()):
        cls = keys.object_class(obj.key)
        if obj.modified > time.time() - DAY:  # rendered again by the reads above, after eviction took it
            assert cls == "variant" and obj.tier == "STANDARD", obj
            fresh += obj.size  # too fresh to evict (read within the last hour)
        else:
            assert obj.tier == ("GLACIER_IR" if cls == "source" else "STANDARD_IA"), obj
    assert host.catalog.usage_total() <= 40 * 1024 * LOW_WATER + fresh
    assert host.command("lifecycle").returncode == 0  # a third run: nothing left, no error
    for (image_id, name), data in served.items():  # evicted ones render again, from the cold source
        assert host.get(image_id, name).data[:8] == data[:8]


def test_lifecycle_and_compaction_share_one_guard(tmp_path):
    host = make_host(tmp_path)
    host.upload(photo(0))
    with host.catalog.maintenance_lock():
        for command in ("lifecycle", "compact"):
            busy = host.command(command)
            assert busy.returncode == 75, (command, busy.stdout, busy.stderr)
            assert "holds the guard" in busy.stderr
    assert host.command("lifecycle").returncode == 0
    assert host.command("compact").returncode == 0
