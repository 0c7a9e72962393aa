"""The Catalog port's contract, for SQLite and for PostgreSQL (the real local server)."""
from __future__ import annotations

import re
import socket
import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from origin.errors import CatalogUnavailable, NotFound
from origin.ports.catalog import ImageRecord, RecordMissing
from origin.ports.catalog_postgres import PostgresCatalog
from origin.ports.catalog_sqlite import SqliteCatalog
from origin.wiring import open_catalog
from tests.servers import free_port


def record(**fields) -> ImageRecord:
    values = dict(
        id=uuid.uuid4().hex[:20],
        content_type="image/png",
        width=4000,
        height=3000,
        bytes=3_000_000_000,  # over 2**31: the column must hold it
        sha256="ab" * 32,
        state="ready",
        has_alpha=True,
        pages=12,
        created_at=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2))),
        owner="alice",
        filename="Ünïcode name.png",
        callback_url="https://example.com/hook?x=1",
        reason="nsfw_score",
        detail="score 0.91 over 0.6",
        metadata='{"exif": {"Make": "Canon"}}',
        phash=0xF0E1D2C3B4A59687,  # over 2**63: stored signed, read back unsigned
        nsfw_score=0.91,
        attempts=2,
    )
    values.update(fields)
    return ImageRecord(**values)


@pytest.fixture(params=["sqlite", "postgres"])
def catalog(request, tmp_path):
    if request.param == "sqlite":
        cat = SqliteCatalog(tmp_path / "catalog.sqlite3")
    else:
        url = request.getfixturevalue("postgres_url")
        cat = PostgresCatalog(url)
        cat.ping()  # creates the table
        with psycopg.connect(url) as conn:
            conn.execute("TRUNCATE images")  # each test starts empty, as with a fresh SQLite file
    yield cat
    cat.close()


def stored(catalog, rec: ImageRecord) -> ImageRecord:
    """`rec` as the catalog holds it: the same, with the seq it assigned."""
    got = catalog.get(rec.id)
    assert got.seq > 0
    assert got == replace(rec, seq=got.seq)
    return got


def test_add_get_round_trip(catalog):
    first = record()
    second = record(content_type="image/jpeg", has_alpha=False, pages=1, state="held",
                    created_at=datetime.now(timezone.utc), bytes=12345, width=1, height=2,
                    owner="", filename="", callback_url="", reason="", detail="", metadata="{}",
                    phash=None, nsfw_score=None, attempts=0)
    third = record(phash=0x0123456789ABCDEF, nsfw_score=0.0)
    for rec in (first, second, third):
        catalog.add(rec)
    for rec in (first, second, third):
        got = stored(catalog, rec)
        assert got.created_at.utcoffset() is not None  # timezone-aware
        assert got.created_at == rec.created_at  # the same instant
        assert type(got.has_alpha) is bool and got.has_alpha is rec.has_alpha
        assert type(got.pages) is int and got.pages == rec.pages
        assert type(got.bytes) is int
        assert got.phash == rec.phash and got.nsfw_score == rec.nsfw_score
    assert catalog.get(first.id).servable and not catalog.get(second.id).servable
    assert catalog.get(first.id).seq < catalog.get(second.id).seq < catalog.get(third.id).seq


def test_unknown_id_raises_record_missing(catalog):
    with pytest.raises(RecordMissing) as info:
        catalog.get("nosuchimage")
    assert isinstance(info.value, NotFound)


def test_set_state(catalog):
    rec = record(state="processing")
    catalog.add(rec)
    catalog.set_state(rec.id, "held")
    assert stored(catalog, rec.with_state("held"))
    with pytest.raises(ValueError):
        catalog.set_state(rec.id, "published")
    assert catalog.get(rec.id).state == "held"
    with pytest.raises(RecordMissing):
        catalog.set_state("nosuchimage", "ready")


def test_add_refuses_unknown_state(catalog):
    rec = record(state="published")
    with pytest.raises(ValueError):
        catalog.add(rec)
    with pytest.raises(RecordMissing):
        catalog.get(rec.id)


def test_delete(catalog):
    rec, other = record(), record()
    catalog.add(rec)
    catalog.add(other)
    catalog.delete(rec.id)
    with pytest.raises(RecordMissing):
        catalog.get(rec.id)
    stored(catalog, other)
    catalog.delete("nosuchimage")  # deleting what is not there is not an error


def test_ping(catalog):
    catalog.ping()


def test_duplicate_id_raises_and_keeps_the_first(catalog):
    # The port has no error of its own for this yet: each adapter raises its driver's IntegrityError.
    rec = record()
    catalog.add(rec)
    with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)):
        catalog.add(record(id=rec.id, width=1, state="held"))
    stored(catalog, rec)


def test_close_then_use_again(catalog):
    rec = record()
    catalog.add(rec)
    catalog.close()
    stored(catalog, rec)


def test_concurrent_use_from_8_threads(catalog):
    start = threading.Barrier(8)

    def work(n: int) -> list[ImageRecord]:
        start.wait()
        done = []
        for i in range(25):
            rec = record(pages=n * 100 + i)
            catalog.add(rec)
            stored(catalog, rec)
            catalog.set_state(rec.id, "held" if i % 2 else "ready")
            done.append(rec.with_state("held" if i % 2 else "ready"))
        return done

    with ThreadPoolExecutor(8) as pool:
        results = [rec for batch in pool.map(work, range(8)) for rec in batch]
    assert len({rec.id for rec in results}) == 200
    for rec in results:
        stored(catalog, rec)


def test_transition(catalog):
    rec = record(state="moderating", reason="", detail="", nsfw_score=None, phash=None)
    catalog.add(rec)
    assert catalog.transition(rec.id, ("moderating",), "processing", nsfw_score=0.25)
    assert stored(catalog, replace(rec, state="processing", nsfw_score=0.25))
    # not in one of from_states: nothing changes
    assert not catalog.transition(rec.id, ("moderating", "validating"), "held", reason="nope")
    assert catalog.get(rec.id).state == "processing" and catalog.get(rec.id).reason == ""
    assert catalog.transition(rec.id, ("validating", "processing"), "ready", sha256="cd" * 32,
                              phash=(1 << 64) - 1, metadata='{"a": 1}', width=10, height=20)
    assert stored(catalog, replace(rec, state="ready", nsfw_score=0.25, sha256="cd" * 32, phash=(1 << 64) - 1,
                                   metadata='{"a": 1}', width=10, height=20))
    assert not catalog.transition("nosuchimage", ("ready",), "held")
    with pytest.raises(ValueError):
        catalog.transition(rec.id, ("ready",), "published")
    with pytest.raises(ValueError):
        catalog.transition(rec.id, ("ready",), "held", owner="mallory")  # not updatable
    assert catalog.get(rec.id).state == "ready" and catalog.get(rec.id).owner == rec.owner


def test_claim_lease_and_release(catalog):
    tag = uuid.uuid4().hex[:6]
    first, second = record(id=f"c1{tag}", state="uploaded", attempts=0), record(id=f"c2{tag}", state="uploaded",
                                                                                 attempts=0)
    other = record(state="ready")
    for rec in (first, second, other):
        catalog.add(rec)
    got = catalog.claim(("uploaded", "validating"), 60)
    assert got is not None and got.id == first.id and got.attempts == 1  # the oldest first
    got = catalog.claim(("uploaded", "validating"), 60)
    assert got.id == second.id and got.attempts == 1
    assert catalog.claim(("uploaded", "validating"), 60) is None  # both leased
    catalog.release(first.id, 0)
    got = catalog.claim(("uploaded",), 60)
    assert got.id == first.id and got.attempts == 2
    catalog.release(second.id, 30)  # not yet claimable again
    assert catalog.claim(("uploaded",), 60) is None
    catalog.add(third := record(state="validating", attempts=0))
    assert catalog.claim(("uploaded", "validating"), 0.2).id == third.id
    time.sleep(0.5)  # its lease runs out: a worker died; it is claimed again
    got = catalog.claim(("uploaded", "validating"), 60)
    assert got.id == third.id and got.attempts == 2


def test_claim_from_8_threads_hands_out_each_image_once(catalog):
    ids = {record_id for record_id in (f"q{i:03d}{uuid.uuid4().hex[:8]}" for i in range(80))}
    for record_id in sorted(ids):
        catalog.add(record(id=record_id, state="processing", attempts=0))
    start = threading.Barrier(8)

    def work(_) -> list[str]:
        start.wait()
        claimed = []
        while (got := catalog.claim(("processing",), 300)) is not None:
            claimed.append(got.id)
        return claimed

    with ThreadPoolExecutor(8) as pool:
        claimed = [i for batch in pool.map(work, range(8)) for i in batch]
    assert sorted(claimed) == sorted(ids)  # every one, none twice


def test_list_owner_pages_newest_first(catalog):
    owner = f"owner-{uuid.uuid4().hex[:8]}"
    recs = [record(owner=owner) for _ in range(5)]
    for rec in recs:
        catalog.add(rec)
    catalog.add(record(owner=owner + "x"))
    page = catalog.list_owner(owner, 3)
    assert [r.id for r in page] == [r.id for r in reversed(recs)][:3]
    rest = catalog.list_owner(owner, 3, before_seq=page[-1].seq)
    assert [r.id for r in rest] == [recs[1].id, recs[0].id]
    assert rest[0] == replace(recs[1], seq=rest[0].seq)
    assert catalog.list_owner(owner, 3, before_seq=rest[-1].seq) == []


def test_list_state_oldest_first(catalog):
    recs = [record(state="quarantined") for _ in range(4)]
    for rec in recs:
        catalog.add(rec)
    mine = {r.id for r in recs}
    listed = [r.id for r in catalog.list_state("quarantined", 1000) if r.id in mine]
    assert listed == [r.id for r in recs]
    assert len(catalog.list_state("quarantined", 2)) == 2
    assert all(r.state == "held" for r in catalog.list_state("held", 1000))


# PostgreSQL-specific behaviour


def test_postgres_schema_lives_in_the_urls_search_path(postgres_url):
    schema = re.search(r"search_path%3D(\w+)", postgres_url)[1]
    cat = open_catalog(postgres_url)
    assert isinstance(cat, PostgresCatalog)
    cat.ping()  # first use creates the table
    with psycopg.connect(postgres_url) as conn:
        columns = dict(conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = 'images'", (schema,)).fetchall())
        indexes = [row[0] for row in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = 'images'", (schema,))]
    cat.close()
    assert columns["created_at"] == "timestamp with time zone"
    assert columns["has_alpha"] == "boolean"
    assert columns["bytes"] == "bigint"
    assert columns["phash"] == "bigint"
    assert any("(sha256)" in index for index in indexes), indexes


def test_postgres_unreachable_fails_fast():
    url = f"postgresql://imagehost:sekret@127.0.0.1:{free_port()}/test"  # nothing listens there
    cat = PostgresCatalog(url)
    calls = {
        "get": lambda: cat.get("abcdefgh"),
        "add": lambda: cat.add(record()),
        "set_state": lambda: cat.set_state("abcdefgh", "ready"),
        "delete": lambda: cat.delete("abcdefgh"),
        "ping": cat.ping,
    }
    for name, call in calls.items():
        started = time.monotonic()
        with pytest.raises(CatalogUnavailable) as info:
            call()
        assert time.monotonic() - started < 5, name
        assert "127.0.0.1" in info.value.message
        assert "sekret" not in info.value.message
    cat.close()


class TcpProxy:
    """A loopback TCP relay to PostgreSQL that a test can cut (an outage) and restore."""

    def __init__(self, target: tuple[str, int], port: int = 0):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(self.target)
            except OSError:
                return
            self.sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def cut(self) -> None:
        for sock in [self.listener, *self.sockets]:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # also wakes the blocked accept()
            except OSError:
                pass
            sock.close()


def relayed_catalog(postgres_url: str) -> tuple[TcpProxy, PostgresCatalog, ImageRecord]:
    """A catalog reaching PostgreSQL through a relay a test can cut, holding one record."""
    info = conninfo_to_dict(postgres_url)
    proxy = TcpProxy((info.get("host", "127.0.0.1"), int(info.get("port", 5432))))
    cat = PostgresCatalog(make_conninfo(postgres_url, host="127.0.0.1", port=str(proxy.port)))
    rec = record()
    cat.add(rec)
    return proxy, cat, rec


def test_postgres_outage_after_start_is_unavailable_then_recovers(postgres_url):
    """The pool's path: connections already open when the database goes away."""
    proxy, cat, rec = relayed_catalog(postgres_url)
    proxy.cut()
    for _ in range(2):
        started = time.monotonic()
        with pytest.raises(CatalogUnavailable):
            cat.get(rec.id)
        assert time.monotonic() - started < 6
    proxy = TcpProxy(proxy.target, proxy.port)  # the database is back
    deadline = time.monotonic() + 30
    while True:
        try:
            stored(cat, rec)
            break
        except CatalogUnavailable:
            assert time.monotonic() < deadline, "the catalog did not recover"
    cat.close()
    proxy.cut()


def test_postgres_back_after_a_long_outage_the_first_call_succeeds(postgres_url):
    """While the database is away the pool's reconnect attempts back off (1 s, 2 s, 4 s, 8 s...);
    once it is back, the next call must not wait out a long backoff and fail."""
    proxy, cat, rec = relayed_catalog(postgres_url)
    proxy.cut()
    outage = time.monotonic() + 16
    while time.monotonic() < outage:  # calls keep coming while it is away, from several threads
        errors = []

        def call():
            try:
                cat.get(rec.id)
            except CatalogUnavailable as exc:
                errors.append(exc)

        threads = [threading.Thread(target=call) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(errors) == 3
        time.sleep(0.1)
    proxy = TcpProxy(proxy.target, proxy.port)  # the database is back
    try:
        stored(cat, rec)  # the first call after the outage
    finally:
        cat.close()
        proxy.cut()
