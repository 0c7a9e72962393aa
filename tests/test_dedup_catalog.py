"""The catalog's contents and merge intents (dedup), for SQLite and for PostgreSQL (the real local
server, a private schema per test): reference counts move only in transactions, races included."""
from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import psycopg
import pytest

from origin.ports.catalog import Content, ContentMissing, ImageRecord, RecordMissing
from origin.ports.catalog_postgres import PostgresCatalog
from origin.ports.catalog_sqlite import SqliteCatalog
from origin.wiring import open_catalog
from tests.backends import private_schema

@pytest.fixture
def catalog(catalog_url):
    cat = open_catalog(catalog_url)
    yield cat
    cat.close()


def record(state: str = "validating", owner: str = "alice", **fields) -> ImageRecord:
    values = dict(id=uuid.uuid4().hex[:16], content_type="image/jpeg", width=0, height=0, bytes=0, sha256="",
                  state=state, created_at=datetime.now(timezone.utc), owner=owner)
    values.update(fields)
    return ImageRecord(**values)


def content_for(rec: ImageRecord, sha: str, width: int = 800, height: int = 600) -> Content:
    return Content(id=rec.id, sha256=sha, content_type="image/jpeg", width=width, height=height, bytes=1234)


def add(catalog, sha: str, owner: str = "alice", width: int = 800, height: int = 600) -> ImageRecord:
    rec = record(owner=owner)
    catalog.add(rec)
    assert catalog.attach(rec.id, content_for(rec, sha, width, height), ("validating",)) is not None
    return catalog.get(rec.id)


def test_first_upload_creates_a_content_the_same_bytes_alias_it(catalog):
    first, second = record(), record(owner="bob")
    catalog.add(first)
    catalog.add(second)
    made = catalog.attach(first.id, content_for(first, "aa" * 32), ("validating",))
    assert not made.alias and made.content.id == first.id and made.content.refs == 1 and made.content.live
    alias = catalog.attach(second.id, content_for(second, "aa" * 32), ("validating",))
    assert alias.alias and alias.content.id == first.id and alias.content.refs == 2
    assert catalog.get(second.id).content_id == first.id and catalog.get(first.id).content_id == first.id
    assert catalog.get(second.id).content == first.id
    # a job that runs twice: the same answer, no second reference
    again = catalog.attach(second.id, content_for(second, "aa" * 32), ("validating",))
    assert again.alias and again.content.id == first.id
    assert catalog.get_content(first.id).refs == 2
    # only from the states asked for; an unknown record is None
    third = record(state="ready")
    catalog.add(third)
    assert catalog.attach(third.id, content_for(third, "aa" * 32), ("validating",)) is None
    assert catalog.attach("nosuchrecord", content_for(third, "aa" * 32), ("validating",)) is None
    assert catalog.get_content(first.id).refs == 2
    with pytest.raises(ContentMissing):
        catalog.get_content("nosuchcontent")


def test_a_record_and_its_content_in_one_read(catalog):
    bare = record()
    catalog.add(bare)
    assert catalog.get_with_content(bare.id) == (catalog.get(bare.id), None)  # not attached yet
    first = add(catalog, "ab" * 32, width=640, height=480)
    alias = add(catalog, "ab" * 32, owner="bob")
    for rec in (first, alias):
        got, content = catalog.get_with_content(rec.id)
        assert got == catalog.get(rec.id) and content == catalog.get_content(first.id)
        assert (content.id, content.width, content.height, content.refs) == (first.id, 640, 480, 2)
    with pytest.raises(RecordMissing):
        catalog.get_with_content("nosuchrecord")


def test_concurrent_uploads_of_the_same_bytes_make_one_content(catalog):
    records = [record(owner=f"o{i}") for i in range(16)]
    for rec in records:
        catalog.add(rec)
    start = threading.Barrier(8)

    def attach(rec):
        if records.index(rec) < 8:
            start.wait()
        return catalog.attach(rec.id, content_for(rec, "bb" * 32), ("validating",))

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attach, records))
    contents = {r.content.id for r in results}
    assert len(contents) == 1 and sum(not r.alias for r in results) == 1
    (content_id,) = contents
    assert catalog.get_content(content_id).refs == 16
    assert {catalog.get(rec.id).content_id for rec in records} == {content_id}


def test_deleting_records_releases_the_content_at_zero(catalog):
    first = add(catalog, "cc" * 32)
    second = add(catalog, "cc" * 32, owner="bob")
    removed = catalog.remove_record(first.id)
    assert removed.record.id == first.id and removed.content.refs == 1 and removed.content.live
    assert not removed.source_orphaned
    removed = catalog.remove_record(second.id)
    assert removed.content.refs == 0 and removed.content.state == "deleting"
    assert catalog.remove_record(second.id) is None  # gone already
    # a deleting content takes no new alias: the same bytes make a new content
    third = add(catalog, "cc" * 32)
    assert catalog.get_content(third.id).live and third.content_id == third.id != first.id
    # reclaimable: deleting, unreferenced, not repointed within the grace; then its row goes
    assert [c.id for c in catalog.reclaimable(5.0, 100)] == [first.id]
    assert catalog.drop_content(first.id)
    assert not catalog.drop_content(third.id)  # live: never
    assert catalog.reclaimable(5.0, 100) == []


def test_repoint_moves_every_record_and_the_counts(catalog):
    small = add(catalog, "dd" * 32, width=720, height=540)
    small_alias = add(catalog, "dd" * 32, owner="carol")
    big = add(catalog, "ee" * 32, owner="bob")
    merge = catalog.plan_merge(small.id, big.id, "perceptual")
    assert merge.step == "planned" and merge.from_id == small.id
    assert catalog.plan_merge(small.id, big.id, "perceptual") is None  # one open intent per content
    assert [m.id for m in catalog.open_merges()] == [merge.id]
    kept = f"sources/{small.id}/source.jpg"
    assert catalog.repoint(merge, kept)
    assert catalog.repoint(merge, kept)  # idempotent: done already
    for rec in (small, small_alias):
        moved = catalog.get(rec.id)
        assert moved.content_id == big.id and moved.source_key == kept
    assert catalog.get(big.id).source_key == ""
    old, new = catalog.get_content(small.id), catalog.get_content(big.id)
    assert (old.refs, old.state, new.refs, new.live) == (0, "deleting", 3, True)
    assert old.repointed_at > 0
    assert catalog.get_merge(merge.id).step == "repointed"
    assert catalog.sources_in_use([kept, "sources/nobody/source.jpg"]) == {kept}
    # within the grace it is not reclaimable; after it, it is
    assert catalog.reclaimable(30.0, 100) == []
    time.sleep(0.3)
    assert [c.id for c in catalog.reclaimable(0.2, 100)] == [small.id]
    # deleting the last records of the kept source orphans it (the content lives on)
    assert not catalog.remove_record(small.id).source_orphaned
    removed = catalog.remove_record(small_alias.id)
    assert removed.source_orphaned and removed.content.id == big.id and removed.content.refs == 1


def test_repoint_is_cancelled_for_protected_owners_and_gone_contents(catalog):
    small = add(catalog, "f1" * 32)
    big = add(catalog, "f2" * 32, owner="dave")
    merge = catalog.plan_merge(small.id, big.id, "perceptual")
    assert not catalog.repoint(merge, "sources/x/source.jpg", frozenset({"dave"}))
    assert catalog.get_merge(merge.id).step == "cancelled" and catalog.open_merges() == []
    assert catalog.get(small.id).content_id == small.id and catalog.get_content(small.id).refs == 1
    # a target that went away: cancelled, nothing moves
    catalog.remove_record(big.id)
    merge = catalog.plan_merge(small.id, big.id, "perceptual")
    assert not catalog.repoint(merge, "sources/x/source.jpg")
    assert catalog.get(small.id).content_id == small.id and catalog.get_content(small.id).live


def test_processing_marks_and_checks(catalog):
    rec = add(catalog, "a1" * 32)
    assert not catalog.get_content(rec.id).processed
    assert catalog.unchecked(10) == []  # only processed contents are looked at
    assert catalog.mark_processed(rec.id, (1 << 64) - 5)
    got = catalog.get_content(rec.id)
    assert got.processed and got.phash == (1 << 64) - 5 and not got.checked
    assert [c.id for c in catalog.unchecked(10)] == [rec.id]
    catalog.set_checked([rec.id])
    assert catalog.unchecked(10) == [] and catalog.get_content(rec.id).checked
    catalog.set_content_score(rec.id, 0.25)
    assert catalog.get_content(rec.id).nsfw_score == 0.25
    assert catalog.content_owners([rec.id]) == {rec.id: {"alice"}}
    assert catalog.content_in_use([rec.id, "nothing"]) == {rec.id}


def test_repoint_and_delete_racing_do_not_lose_a_count(catalog):
    """Deletes of a content's records while it is repointed: the counts stay exact."""
    for round_ in range(3):
        small = add(catalog, f"{round_:02x}" * 32)
        others = [add(catalog, f"{round_:02x}" * 32, owner=f"o{i}") for i in range(6)]
        big = add(catalog, f"b{round_:01x}" * 32)
        merge = catalog.plan_merge(small.id, big.id, "perceptual")
        start = threading.Barrier(4)

        def remove(rec):
            start.wait()
            catalog.remove_record(rec.id)

        def move():
            start.wait()
            catalog.repoint(merge, "sources/k/source.jpg")

        with ThreadPoolExecutor(4) as pool:
            jobs = [pool.submit(remove, rec) for rec in others[:3]] + [pool.submit(move)]
            for job in jobs:
                job.result()
        left = [r.id for r in (small, *others, big)
                if r.id not in {o.id for o in others[:3]}]
        target = catalog.get_content(big.id)
        assert target.refs == sum(1 for rid in left if catalog.get(rid).content_id == big.id) == len(left)
        assert catalog.get_content(small.id).refs == 0


# ---------------------------------------------------------------- existing data


OLD_SQLITE_SCHEMA = """
CREATE TABLE images (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, content_type TEXT NOT NULL,
    width INTEGER NOT NULL, height INTEGER NOT NULL, bytes INTEGER NOT NULL, sha256 TEXT NOT NULL,
    state TEXT NOT NULL, has_alpha INTEGER NOT NULL DEFAULT 0, pages INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL, owner TEXT NOT NULL DEFAULT '', filename TEXT NOT NULL DEFAULT '',
    callback_url TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '{}', phash INTEGER, nsfw_score REAL, attempts INTEGER NOT NULL DEFAULT 0,
    lease_until REAL NOT NULL DEFAULT 0
);
INSERT INTO images (id, content_type, width, height, bytes, sha256, state, created_at)
VALUES ('legacy01', 'image/jpeg', 10, 20, 30, 'ff', 'ready', '2024-01-02T03:04:05+00:00');
"""


def test_a_sqlite_catalog_from_before_contents_keeps_working(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SQLITE_SCHEMA)
    catalogs = [SqliteCatalog(path), SqliteCatalog(path)]  # two processes opening it: the second finds the columns
    legacy = catalogs[0].get("legacy01")
    assert legacy.content_id == "" and legacy.content == "legacy01" and legacy.source_key == ""
    rec = add(catalogs[1], "12" * 32)
    assert catalogs[0].get(rec.id).content_id == rec.id
    removed = catalogs[0].remove_record("legacy01")
    assert removed.content is None and not removed.source_orphaned
    for cat in catalogs:
        cat.close()


OLD_POSTGRES_SCHEMA = """
CREATE TABLE images (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id TEXT NOT NULL UNIQUE, content_type TEXT NOT NULL,
    width INTEGER NOT NULL, height INTEGER NOT NULL, bytes BIGINT NOT NULL, sha256 TEXT NOT NULL,
    state TEXT NOT NULL, has_alpha BOOLEAN NOT NULL DEFAULT FALSE, pages INTEGER NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL, owner TEXT NOT NULL DEFAULT '', filename TEXT NOT NULL DEFAULT '',
    callback_url TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '{}', phash BIGINT, nsfw_score DOUBLE PRECISION,
    attempts INTEGER NOT NULL DEFAULT 0, lease_until DOUBLE PRECISION NOT NULL DEFAULT 0
)
"""


def test_a_postgres_catalog_from_before_contents_keeps_working():
    with private_schema("t_dedup") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(OLD_POSTGRES_SCHEMA)
            conn.execute("INSERT INTO images (id, content_type, width, height, bytes, sha256, state, created_at)"
                         " VALUES ('legacy01', 'image/jpeg', 10, 20, 30, 'ff', 'ready', now())")
        cat = PostgresCatalog(url)
        legacy = cat.get("legacy01")
        assert legacy.content_id == "" and legacy.content == "legacy01"
        rec = add(cat, "34" * 32)
        assert cat.get(rec.id).content_id == rec.id
        cat.close()


def test_a_contents_thumbhash_is_shared_by_its_aliases_and_follows_a_repoint(catalog):
    from origin.pipeline.records import served_record

    first = add(catalog, "a1" * 32)
    alias = add(catalog, "a1" * 32, owner="bob")
    other = add(catalog, "a2" * 32, owner="carol")
    assert catalog.get_content(first.id).thumbhash is None  # nullable: none until made
    catalog.set_content_thumbhash(first.id, "3OcRJYB4d3h/iIeHeEh3eIhw+j2w")
    catalog.set_content_thumbhash(other.id, "1QcSHQRnh493V4dIh4eXh1h4kJUI")
    assert catalog.get_content(first.id).thumbhash == "3OcRJYB4d3h/iIeHeEh3eIhw+j2w"
    assert {c.id: c.thumbhash for c in catalog.get_contents([first.id, other.id]).values()} == {
        first.id: "3OcRJYB4d3h/iIeHeEh3eIhw+j2w", other.id: "1QcSHQRnh493V4dIh4eXh1h4kJUI"}
    late = record(owner="dave")
    catalog.add(late)
    assert catalog.attach(late.id, content_for(late, "a1" * 32), ("validating",)).content.thumbhash == (
        "3OcRJYB4d3h/iIeHeEh3eIhw+j2w")
    for rec in (first, alias, late):  # a record that is its own content reads it too
        assert served_record(catalog, catalog.get(rec.id)).thumbhash == "3OcRJYB4d3h/iIeHeEh3eIhw+j2w"
    assert catalog.repoint(catalog.plan_merge(first.id, other.id, "perceptual"), f"sources/{first.id}/source.jpg")
    for rec in (first, alias, late):  # collapsed into another content: its placeholder now
        assert served_record(catalog, catalog.get(rec.id)).thumbhash == "1QcSHQRnh493V4dIh4eXh1h4kJUI"


OLD_CONTENTS = """
CREATE TABLE contents (
    id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, content_type TEXT NOT NULL, width INTEGER NOT NULL,
    height INTEGER NOT NULL, has_alpha INTEGER NOT NULL DEFAULT 0, pages INTEGER NOT NULL DEFAULT 1,
    bytes BIGINT NOT NULL DEFAULT 0, phash BIGINT, refs INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'live', nsfw_score DOUBLE PRECISION, checked INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL, repointed_at DOUBLE PRECISION NOT NULL DEFAULT 0
);
INSERT INTO contents (id, sha256, content_type, width, height, created_at)
VALUES ('oldcontent1', 'ff', 'image/jpeg', 4, 3, 0);
"""


def test_a_catalog_from_before_placeholders_gets_the_column(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SQLITE_SCHEMA + OLD_CONTENTS)
    with private_schema("t_thumbhash") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(OLD_POSTGRES_SCHEMA)
            for statement in OLD_CONTENTS.split(";")[:2]:
                conn.execute(statement)
        for cat in (SqliteCatalog(path), PostgresCatalog(url)):
            assert cat.get_content("oldcontent1").thumbhash is None
            cat.set_content_thumbhash("oldcontent1", "3OcRJYB4d3h/iIeHeEh3eIhw+j2w")
            assert cat.get_content("oldcontent1").thumbhash == "3OcRJYB4d3h/iIeHeEh3eIhw+j2w"
            cat.close()
