"""The Store port's contract, for the local directory and for S3 (a real moto server over HTTP)."""
from __future__ import annotations

import http.server
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from dataclasses import replace

import pytest

from origin.config import Settings
from origin.errors import NotFound, StoreUnavailable
from origin.ports.store import KeyMissing
from origin.ports.store_local import LocalStore
from origin.ports.store_cache import CachedStore
from origin.ports.store_s3 import S3Store
from origin.wiring import open_store
from tests.servers import free_port

BLOB = bytes(range(256)) * 257  # binary, not a multiple of any buffer size


@pytest.fixture(params=["local", "s3", "s3-cached"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    if request.param == "s3-cached":  # the port's contract holds through the local cache as well
        return CachedStore(request.getfixturevalue("s3_store"), tmp_path / "cache", 64 * 1024 * 1024)
    return request.getfixturevalue("s3_store")


def test_put_get_round_trip(store):
    store.put("images/abc123/original.jpg", BLOB, "image/jpeg")
    assert store.get("images/abc123/original.jpg") == BLOB
    store.put("images/abc123/source.bin", b"", "application/octet-stream")  # (an empty lazy variant reads
    assert store.get("images/abc123/source.bin") == b""  # as missing locally: see the test below)


def test_missing_key_raises_key_missing(store):
    with pytest.raises(KeyMissing) as info:
        store.get("images/nope/w300.webp")
    assert isinstance(info.value, NotFound)
    store.put("images/other/w300.webp", b"x", "image/webp")
    with pytest.raises(KeyMissing):
        store.get("images/other/w600.webp")


def test_exists(store):
    assert not store.exists("images/abc123/w300.webp")
    store.put("images/abc123/w300.webp", b"webp", "image/webp")
    assert store.exists("images/abc123/w300.webp")
    assert not store.exists("images/abc123/w600.webp")
    assert not store.exists("images/abc123")  # a "folder" is not an object


def test_overwrite_replaces_whole_object(store):
    store.put("images/abc123/w300.png", b"a" * 5000, "image/png")
    store.put("images/abc123/w300.png", b"b" * 10, "image/png")
    assert store.get("images/abc123/w300.png") == b"b" * 10


@pytest.mark.parametrize("prefix", ["images/aaa111/", "images/aaa111"])
def test_delete_prefix_counts_and_deletes_only_that_prefix(store, prefix):
    doomed = ["images/aaa111/original.jpg", "images/aaa111/w300.webp", "images/aaa111/sq64.avif"]
    kept = ["images/aaa1112/original.jpg", "images/bbb222/original.jpg"]  # shares a string prefix
    for key in doomed + kept:
        store.put(key, key.encode(), "image/jpeg")
    assert store.delete_prefix(prefix) == 3
    for key in doomed:
        assert not store.exists(key)
        with pytest.raises(KeyMissing):
            store.get(key)
    for key in kept:
        assert store.get(key) == key.encode()
    assert store.delete_prefix(prefix) == 0
    assert store.delete_prefix("images/never-was/") == 0


def test_delete_prefix_past_one_page(store):
    """More than 1000 objects: S3 lists and deletes them in several batches."""
    keys = [f"images/many01/k{i:05d}" for i in range(1234)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: store.put(key, b"x", "application/octet-stream"), keys))
    store.put("images/many02/k00000", b"kept", "application/octet-stream")
    assert store.delete_prefix("images/many01/") == 1234
    assert not store.exists(keys[0]) and not store.exists(keys[-1])
    assert store.get("images/many02/k00000") == b"kept"


def test_ping(store):
    store.ping()


def test_concurrent_readers_never_see_a_partial_object(store):
    key = "images/race01/w2400.jpeg"
    versions = [b"a" * (3 << 20), b"b" * (2 << 20) + b"end"]
    store.put(key, versions[0], "image/jpeg")
    done = threading.Event()
    bad: list[int] = []
    reads = [0]

    def writer():
        for i in range(30):
            store.put(key, versions[(i + 1) % 2], "image/jpeg")
        done.set()

    def reader():
        while not done.is_set():
            data = store.get(key)
            reads[0] += 1
            if data not in versions:
                bad.append(len(data))

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert reads[0] > 10
    assert bad == [], f"readers saw partial objects of sizes {bad[:10]}"
    if isinstance(store, LocalStore):  # no temporary files left behind
        assert sorted(p.name for p in (store.root / "images/race01").iterdir()) == ["w2400.jpeg"]


# S3-specific behaviour


def test_s3_sets_content_type_and_prefix(s3_store):
    s3_store.put("images/abc123/w300.webp", b"webp", "image/webp")
    s3_store.put("images/abc123/master.jpg", b"jpg", "")
    client, bucket = s3_store.client, s3_store.bucket
    assert client.head_object(Bucket=bucket, Key="tenant-a/images/abc123/w300.webp")["ContentType"] == "image/webp"
    head = client.head_object(Bucket=bucket, Key="tenant-a/images/abc123/master.jpg")
    assert head["ContentType"] == "application/octet-stream"
    listed = client.list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(obj["Key"] for obj in listed) == [
        "tenant-a/images/abc123/master.jpg",
        "tenant-a/images/abc123/w300.webp",
    ]


def test_s3_from_settings(s3_store, tmp_path):
    settings = Settings(
        data_dir=tmp_path,
        store="s3",
        s3_bucket=s3_store.bucket,
        s3_prefix="/tenant-a/",
        s3_endpoint_url=s3_store.endpoint_url,
        s3_region="eu-west-1",
    )
    store = open_store(settings)
    assert isinstance(store, CachedStore) and isinstance(store.inner, S3Store)  # a local cache by default
    store.put("images/fromset/original.png", b"png", "image/png")
    assert s3_store.get("images/fromset/original.png") == b"png"  # same bucket, same prefix
    assert store.client.meta.region_name == "eu-west-1"
    assert (tmp_path / "store-cache" / "images" / "fromset" / "original.png").read_bytes() == b"png"
    assert isinstance(open_store(replace(settings, store_cache_bytes=0)), S3Store)


def test_s3_missing_bucket_is_unavailable_not_missing_key(moto_server):
    store = S3Store("no-such-bucket-here", endpoint_url=moto_server)
    for call in (lambda: store.get("images/abc123/original.jpg"), store.ping,
                 lambda: store.put("images/abc123/original.jpg", b"x", "image/jpeg")):
        with pytest.raises(StoreUnavailable) as info:
            call()
        assert not isinstance(info.value, KeyMissing)
        assert "no-such-bucket-here" in info.value.message


def test_s3_unreachable_endpoint_fails_fast(aws_credentials):
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    store = S3Store("imagehost", endpoint_url=endpoint)
    calls = {
        "get": lambda: store.get("images/abc123/original.jpg"),
        "put": lambda: store.put("images/abc123/original.jpg", b"x", "image/jpeg"),
        "ping": store.ping,
        "exists": lambda: store.exists("images/abc123/original.jpg"),
        "delete_prefix": lambda: store.delete_prefix("images/abc123/"),
    }
    for name, call in calls.items():
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as info:
            call()
        assert time.monotonic() - started < 10, name
        assert endpoint in info.value.message, info.value.message


class _Failing(http.server.BaseHTTPRequestHandler):
    def _fail(self):
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_PUT = do_HEAD = do_POST = _fail

    def log_message(self, *args):
        pass


def test_s3_server_errors_are_unavailable(aws_credentials):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        store = S3Store("imagehost", endpoint_url=f"http://127.0.0.1:{server.server_address[1]}")
        for call in (lambda: store.get("images/abc123/original.jpg"), store.ping,
                     lambda: store.put("images/abc123/original.jpg", b"x", "image/jpeg")):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable) as info:
                call()
            assert time.monotonic() - started < 10
            assert "503" in info.value.message or "Unavailable" in info.value.message, info.value.message
    finally:
        server.shutdown()
        server.server_close()


def test_listing_folders_and_objects(store):
    store.put("images/a1/w300.webp", b"x" * 10, "image/webp")
    store.put("images/a1/sq64.avif", b"y" * 3, "image/avif")
    store.put("images/b2/source.jpg", b"z", "image/jpeg")
    store.put("imagesX/c3/source.jpg", b"z", "image/jpeg")
    assert sorted(store.folders("images")) == ["a1", "b2"]
    found = sorted((obj.key, obj.size) for obj in store.objects("images/a1"))
    assert found == [("images/a1/sq64.avif", 3), ("images/a1/w300.webp", 10)]
    assert all(abs(obj.modified - __import__("time").time()) < 300 for obj in store.objects("images/a1"))
    assert list(store.objects("images/none")) == [] and list(store.folders("nothing")) == []


def test_an_empty_lazy_variant_reads_as_missing(tmp_path):
    """Lazy variants are written without fsync: one cut short by a power loss renders again."""
    store = LocalStore(tmp_path / "store")
    (tmp_path / "store" / "images" / "C0ntent1").mkdir(parents=True)
    (tmp_path / "store" / "images" / "C0ntent1" / "w300.webp").write_bytes(b"")
    (tmp_path / "store" / "images" / "C0ntent1" / "source.jpg").write_bytes(b"")
    with pytest.raises(KeyMissing):
        store.get("images/C0ntent1/w300.webp")
    assert store.get("images/C0ntent1/source.jpg") == b""  # an original is never second-guessed


def test_listing_passes_over_a_folder_deleted_meanwhile(tmp_path):
    """Found by the cost benchmark: a merge's timer reclaimed a content while the lifecycle walked the
    store, and Path.rglob raised FileNotFoundError out of objects()."""
    store = LocalStore(tmp_path / "store")
    for content in ("AAAAAAAA", "BBBBBBBB", "CCCCCCCC"):
        store.put(f"images/{content}/w300.webp", b"x", "image/webp")
    walk = store.objects("images/")
    first = next(walk)
    others = {"AAAAAAAA", "BBBBBBBB", "CCCCCCCC"} - {first.key.split("/")[1]}
    gone = sorted(others)[0]
    store.delete_prefix(f"images/{gone}/")
    rest = [o.key for o in walk]
    assert f"images/{gone}/w300.webp" not in rest and len(rest) == 1
