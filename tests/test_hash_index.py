"""The HashIndex port (perceptual-hash near-duplicate lookup), for SQLite and for
PostgreSQL (the real local server, a private schema per test), checked against a
brute-force scan; plus real imagehash pHashes of generated and real pictures."""
from __future__ import annotations

import io
import itertools
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psycopg
import pyvips
import pytest
from PIL import Image, ImageDraw

from origin.errors import CatalogUnavailable
from origin.ports.hash_index import (
    BAND_SHIFTS,
    BAND_WIDTHS,
    MASK64,
    MAX_SUPPORTED_DISTANCE,
    DistanceUnsupported,
    hamming,
    phash_int,
    probe_count,
    radii,
)
from origin.wiring import open_hash_index
from origin.ports.hash_index_postgres import PostgresHashIndex
from origin.ports.hash_index_sqlite import SqliteHashIndex
from tests.backends import postgres_base_url, private_schema, with_query

PHOTO_DIR = Path("/usr/share/backgrounds/mate")
THRESHOLD = 6


@pytest.fixture
def pg_url():
    """A private schema of the test database for one test; dropped afterwards."""
    with private_schema("t_hash") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def make_index(request, tmp_path):
    """A factory: make_index(max_distance=6) → a fresh, empty index of the adapter."""
    made = []

    def make(max_distance: int = THRESHOLD):
        if request.param == "sqlite":
            index = SqliteHashIndex(tmp_path / "hashes.sqlite3", max_distance=max_distance)
        else:
            index = PostgresHashIndex(request.getfixturevalue("pg_url"), max_distance=max_distance)
        made.append(index)
        return index

    yield make
    for index in made:
        index.close()


@pytest.fixture
def index(make_index):
    return make_index()


def flip(value: int, bits) -> int:
    for bit in bits:
        value ^= 1 << int(bit)
    return value


def brute_force(hashes: dict[str, int], query: int, max_distance: int) -> list[tuple[str, int]]:
    found = ((cid, hamming(h, query)) for cid, h in hashes.items())
    return sorted(((cid, d) for cid, d in found if d <= max_distance), key=lambda item: (item[1], item[0]))


# ------------------------------------------------------------------ the contract


def test_add_near_remove(index):
    assert index.count() == 0
    assert index.near(0x0123456789ABCDEF, THRESHOLD) == []
    base = 0x0123456789ABCDEF
    index.add("orig", base)
    index.add("near3", flip(base, [0, 30, 63]))
    index.add("twin", base)  # two ids may share a hash
    index.add("far", base ^ MASK64)
    assert index.count() == 4
    assert index.near(base, THRESHOLD) == [("orig", 0), ("twin", 0), ("near3", 3)]
    assert index.near(base, 2) == [("orig", 0), ("twin", 0)]
    assert index.near(base ^ MASK64, 0) == [("far", 0)]

    index.remove("orig")
    index.remove("orig")  # unknown ids are ignored
    index.remove("never-added")
    assert index.near(base, THRESHOLD) == [("twin", 0), ("near3", 3)]
    assert index.count() == 3


def test_add_replaces_the_hash_of_an_id(index):
    index.add("img", 0)
    index.add("img", MASK64)
    assert index.count() == 1
    assert index.near(0, THRESHOLD) == []
    assert index.near(MASK64, THRESHOLD) == [("img", 0)]


def test_unsigned_64_bit_round_trip(index):
    """The top bit set (a negative BIGINT in the database) and the extremes."""
    values = {"zero": 0, "one": 1, "top": 1 << 63, "below-top": (1 << 63) - 1, "all": MASK64,
              "mixed": 0xF0F0F0F0F0F0F0F0}
    index.add_many(values.items())
    for cid, value in values.items():
        assert index.near(value, 0) == [(cid, 0)]
    assert index.near(1 << 63, 1) == [("top", 0), ("zero", 1)]
    assert index.near(MASK64, 1) == [("all", 0), ("below-top", 1)]


def test_bad_values_are_refused(index, make_index):
    for bad in (-1, 1 << 64, 1.5, "ff", True):
        with pytest.raises(ValueError):
            index.add("x", bad)
        with pytest.raises(ValueError):
            index.near(bad, THRESHOLD)
    with pytest.raises(ValueError):
        index.near(0, -1)
    for bad in (-1, MAX_SUPPORTED_DISTANCE + 1):
        with pytest.raises(ValueError, match="max_distance"):
            make_index(max_distance=bad)
    assert index.count() == 0


def test_a_query_beyond_the_guarantee_raises(make_index):
    index = make_index(max_distance=THRESHOLD)
    index.add("a", 0)
    assert index.near(0, THRESHOLD) == [("a", 0)]
    with pytest.raises(DistanceUnsupported, match="only up to 6") as info:
        index.near(0, THRESHOLD + 1)
    assert isinstance(info.value, ValueError)
    narrow = make_index(max_distance=2)
    with pytest.raises(DistanceUnsupported):
        narrow.near(0, 3)
    assert narrow.near(0, 2) == [("a", 0)]


def test_probe_radii_satisfy_the_pigeonhole_bound():
    """For every distance, any split of it over the bands has a band within its radius."""
    for distance in range(MAX_SUPPORTED_DISTANCE + 1):
        rs = radii(distance)
        for split in itertools.product(*(range(min(w, distance) + 1) for w in BAND_WIDTHS)):
            if sum(split) <= distance:
                assert any(d_k <= r for d_k, r in zip(split, rs)), (distance, split, rs)
    assert probe_count(6) == 298


# ------------------------------------------------------------ exact recall at scale


def compositions(total: int, parts: int):
    """Every way to spread `total` differing bits over `parts` bands (the adversarial cases)."""
    for cut in itertools.combinations(range(total + parts - 1), parts - 1):
        bounds = (-1, *cut, total + parts - 1)
        yield tuple(bounds[i + 1] - bounds[i] - 1 for i in range(parts))


def spread_flip(value: int, split, rng) -> int:
    for shift, width, flips in zip(BAND_SHIFTS, BAND_WIDTHS, split):
        value = flip(value, shift + rng.choice(width, size=flips, replace=False))
    return value


@pytest.mark.parametrize("max_distance", [THRESHOLD, MAX_SUPPORTED_DISTANCE])
def test_recall_equals_brute_force(make_index, max_distance):
    rng = np.random.default_rng(12345 + max_distance)
    index = make_index(max_distance=max_distance)
    hashes = {f"bg{i:05d}": int(h) for i, h in enumerate(rng.integers(0, 2**64, size=20_000, dtype=np.uint64))}
    queries = [int(h) for h in rng.integers(0, 2**64, size=12, dtype=np.uint64)]
    queries.append(next(iter(hashes.values())))  # a stored hash as the query
    planted_near, planted_far = {}, {}
    for qi, q in enumerate(queries[:-1]):
        for distance in range(max_distance + 1):  # random positions at every distance 0..T
            h = flip(q, rng.choice(64, size=distance, replace=False))
            planted_near[f"q{qi:02d}-d{distance}-random"] = (h, distance)
        for distance in range(min(max_distance, 6) + 1):  # every spread of 0..6 bits over the bands
            for split in compositions(distance, len(BAND_WIDTHS)):
                name = f"q{qi:02d}-d{distance}-" + ".".join(map(str, split))
                planted_near[name] = (spread_flip(q, split, rng), distance)
        for distance in (max_distance + 1, max_distance + 2, 16, 32):
            planted_far[f"q{qi:02d}-far{distance}"] = (flip(q, rng.choice(64, size=distance, replace=False)), distance)
    assert all(hamming(h, queries[int(n[1:3])]) == d for n, (h, d) in {**planted_near, **planted_far}.items())

    assert index.add_many(hashes.items()) == len(hashes)
    for name, (h, _) in itertools.chain(planted_near.items(), planted_far.items()):
        index.add(name, h)
        hashes[name] = h
    assert index.count() == len(hashes)

    for qi, q in enumerate(queries):
        got = index.near(q, max_distance)
        assert got == brute_force(hashes, q, max_distance), f"query {qi}"
        names = {cid for cid, _ in got}
        assert {n for n in planted_near if n.startswith(f"q{qi:02d}-")} <= names
        assert not {n for n in planted_far if n.startswith(f"q{qi:02d}-")} & names
    for distance in range(max_distance):  # narrower lookups use other probe radii
        for q in queries[:3]:
            assert index.near(q, distance) == brute_force(hashes, q, distance)


def test_concurrent_use(index):
    index.add_many((f"seed{i}", i << 40) for i in range(100))

    def work(n: int):
        for i in range(20):
            h = (n << 56) | i
            index.add(f"t{n}-{i}", h)
            assert (f"t{n}-{i}", 0) in index.near(h, THRESHOLD)
        return n

    with ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(work, range(8))) == list(range(8))
    assert index.count() == 100 + 8 * 20


# ----------------------------------------------------------------- PostgreSQL


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_postgres_raises_catalog_unavailable_fast():
    index = PostgresHashIndex(f"postgresql://postgres:s3cret@127.0.0.1:{free_port()}/test")
    started = time.monotonic()
    for call in (index.ping, index.count, lambda: index.near(0, THRESHOLD), lambda: index.add("x", 1),
                 lambda: index.remove("x"), lambda: index.add_many([("x", 1)])):
        with pytest.raises(CatalogUnavailable) as info:
            call()
        assert "s3cret" not in str(info.value)
        assert "127.0.0.1" in str(info.value)
    assert time.monotonic() - started < 5
    index.close()


def test_postgres_survives_the_server_closing_its_connections(pg_url):
    tag = f"hashidx-{uuid.uuid4().hex[:8]}"
    index = PostgresHashIndex(with_query(pg_url, f"application_name={tag}"))
    try:
        index.add("a", 42)
        with ThreadPoolExecutor(4) as pool:  # several pooled connections
            list(pool.map(lambda _: index.near(42, THRESHOLD), range(16)))
        with psycopg.connect(postgres_base_url(), autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s", (tag,)
            ).fetchone()[0]
        assert killed >= 1
        time.sleep(0.2)
        assert index.near(42, THRESHOLD) == [("a", 0)]
        index.add("b", 43)
        assert index.count() == 2
    finally:
        index.close()


def test_postgres_stores_signed_bigint_and_indexes_every_band(pg_url):
    index = PostgresHashIndex(pg_url)
    index.add("top", MASK64)
    index.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT phash FROM phash_index").fetchone()[0] == -1
        indexed = {row[0] for row in conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'phash_index'")}
    for k in range(len(BAND_WIDTHS)):
        assert any(f"(b{k})" in definition for definition in indexed), indexed


def test_open_hash_index_picks_the_adapter(tmp_path, pg_url):
    sqlite_index = open_hash_index(f"sqlite:///{tmp_path / 'h.sqlite3'}", max_distance=4)
    pg_index = open_hash_index(pg_url)
    try:
        assert isinstance(sqlite_index, SqliteHashIndex) and sqlite_index.max_distance == 4
        assert isinstance(pg_index, PostgresHashIndex) and pg_index.max_distance == THRESHOLD
    finally:
        sqlite_index.close()
        pg_index.close()


# ------------------------------------------------------- real pHashes of real pictures


def picture(width: int = 800, height: int = 600) -> Image.Image:
    """A generated picture with structure at several scales."""
    xyz = pyvips.Image.xyz(width, height)
    x, y = xyz[0], xyz[1]
    r = (x * 255 / (width - 1)).cast("uchar")
    g = ((((x - width / 2) ** 2 + (y - height / 2) ** 2) ** 0.5) * 255 / width).cast("uchar")
    b = (y * 200 / (height - 1) + 30).cast("uchar")
    image = Image.frombytes("RGB", (width, height), r.bandjoin([g, b]).write_to_memory())
    draw = ImageDraw.Draw(image)
    draw.ellipse((width * 0.55, height * 0.1, width * 0.9, height * 0.55), fill=(250, 240, 30))
    draw.rectangle((width * 0.08, height * 0.6, width * 0.4, height * 0.92), fill=(20, 40, 160))
    draw.polygon([(width * 0.1, height * 0.1), (width * 0.45, height * 0.2), (width * 0.2, height * 0.5)],
                 fill=(200, 30, 60))
    for i in range(0, width, 50):
        draw.line((i, height * 0.95, i + 25, height), fill=(0, 0, 0), width=6)
    return image


def encode_jpeg(image: Image.Image, quality: int, exif: Image.Exif | None = None) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, exif=exif if exif is not None else Image.Exif())
    return out.getvalue()


def strip_metadata(jpeg: bytes) -> bytes:
    """Drop the APP1..APP15 and COM segments, byte for byte (the pixels stay as they are)."""
    assert jpeg[:2] == b"\xff\xd8"
    out, pos = bytearray(jpeg[:2]), 2
    while True:
        marker = jpeg[pos + 1]
        if marker == 0xDA:  # start of scan: the rest is image data
            out += jpeg[pos:]
            return bytes(out)
        length = int.from_bytes(jpeg[pos + 2: pos + 4], "big")
        if not (0xE1 <= marker <= 0xEF or marker == 0xFE):
            out += jpeg[pos: pos + 2 + length]
        pos += 2 + length


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (1024, 1024))  # pHash looks at 32x32: a reduced JPEG decode is plenty
    return image.convert("RGB")


def test_real_phashes_of_variants_are_near_and_different_photos_are_not(index):
    exif = Image.Exif()
    exif[0x010F] = "ImagehostCam"  # Make
    exif[0x0110] = "Model 1"  # Model
    exif[0x010E] = "a description that the stripped copy loses"
    original = encode_jpeg(picture(), 92, exif)
    source = decode(original)
    resized = source.resize((round(source.width * 0.9), round(source.height * 0.9)), Image.LANCZOS)
    variants = {
        "jpeg-q60": encode_jpeg(source, 60),
        "resized-90%": encode_jpeg(resized, 92),
        "metadata-stripped": strip_metadata(original),
    }
    assert b"ImagehostCam" in original and b"ImagehostCam" not in variants["metadata-stripped"]
    assert len(variants["metadata-stripped"]) < len(original)

    photos = [PHOTO_DIR / "nature" / name for name in ("Aqua.jpg", "Garden.jpg", "LadyBird.jpg")]
    photo_hashes = {p.stem: phash_int(decode(p.read_bytes())) for p in photos}
    original_hash = phash_int(source)
    index.add("generated", original_hash)
    index.add_many(photo_hashes.items())

    for name, data in variants.items():
        h = phash_int(decode(data))
        assert hamming(h, original_hash) <= THRESHOLD, name
        assert ("generated", hamming(h, original_hash)) in index.near(h, THRESHOLD), name

    for (a, ha), (b, hb) in itertools.combinations(photo_hashes.items(), 2):
        assert hamming(ha, hb) > THRESHOLD, (a, b, hamming(ha, hb))
    for name, h in photo_hashes.items():
        assert hamming(h, original_hash) > THRESHOLD
        assert index.near(h, THRESHOLD) == [(name, 0)]

    # a real photo: its q60 re-encode and its -10 % resize stay near it
    ladybird = decode((PHOTO_DIR / "nature" / "LadyBird.jpg").read_bytes())
    smaller = ladybird.resize((round(ladybird.width * 0.9), round(ladybird.height * 0.9)), Image.LANCZOS)
    for data in (encode_jpeg(ladybird, 60), encode_jpeg(smaller, 92)):
        assert index.near(phash_int(decode(data)), THRESHOLD)[0][0] == "LadyBird"


def test_the_same_photo_published_at_three_sizes_is_found(index):
    """Debian ships one elephants picture at 1920x1080, 3840x2160 and 5640x3172."""
    sizes = ["Elephants.jpg", "Elephants_3840x2160.jpg", "Elephants_5640x3172.jpg"]
    hashes = {name: phash_int(decode((PHOTO_DIR / "abstract" / name).read_bytes())) for name in sizes}
    index.add_many(hashes.items())
    index.add("other", phash_int(decode((PHOTO_DIR / "nature" / "Aqua.jpg").read_bytes())))
    for name, h in hashes.items():
        assert sorted(cid for cid, _ in index.near(h, THRESHOLD)) == sorted(sizes)
