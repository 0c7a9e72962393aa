"""Storage tiers in the Store port, for the local store and for S3 (a real moto server over HTTP):
placement at write, tags, moves to colder tiers, listings by tier, archived reads and restores."""
from __future__ import annotations

import threading

import pytest

from origin import keys
from origin.config import ConfigError, Settings
from origin.lifecycle.rules import TAG, Rules
from origin.ports.store import KeyMissing, ObjectArchived, Placement
from origin.ports.store_local import LocalStore
from origin.ports.store_s3 import S3Store
from origin.errors import InvalidRequest

BIG = b"x" * (200 * 1024)  # over the 128 KiB minimum of the cold tiers
SMALL = b"y" * 1000
DEFAULT = Rules.from_settings(Settings()).placement()  # the shipped rules


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "store", placement=DEFAULT)
    plain = request.getfixturevalue("s3_store")
    return S3Store(plain.bucket, "tenant-a", plain.endpoint_url, placement=DEFAULT)


def tiers(store, prefix="images") -> dict[str, str]:
    return {obj.key: obj.tier for obj in store.objects(prefix)}


def test_default_placement_sends_kept_sources_cold_at_once_and_tags_originals():
    assert DEFAULT.tier_for("sources/abc123/source.jpg", len(BIG)) == "GLACIER_IR"
    assert DEFAULT.tier_for("sources/abc123/source.jpg", len(SMALL)) == "STANDARD"  # billed as 128 KB there
    for key in ("images/abc123/source.jpg", "images/abc123/w300.webp", "images/abc123/sq64.avif",
                "images/abc123/intermediate.jpg", "records/abc123.json"):
        assert DEFAULT.tier_for(key, len(BIG)) == "STANDARD", key
    assert DEFAULT.tagging_for("images/abc123/source.jpg") == TAG
    assert DEFAULT.tagging_for("images/abc123/master.jpg") == TAG
    assert DEFAULT.tagging_for("images/abc123/w1200.avif") == ""


def test_put_places_by_class_and_lists_tiers(store):
    store.put("sources/kept01/source.jpg", BIG, "image/jpeg")
    store.put("sources/kept02/source.jpg", SMALL, "image/jpeg")
    store.put("images/abc123/source.jpg", BIG, "image/jpeg")
    store.put("images/abc123/w300.webp", BIG, "image/webp")
    assert tiers(store, "sources") == {"sources/kept01/source.jpg": "GLACIER_IR",
                                       "sources/kept02/source.jpg": "STANDARD"}
    assert set(tiers(store).values()) == {"STANDARD"}
    assert store.get("sources/kept01/source.jpg") == BIG  # Glacier IR reads at once
    assert store.exists("sources/kept01/source.jpg")
    if isinstance(store, S3Store):
        head = store.client.head_object(Bucket=store.bucket, Key="tenant-a/sources/kept01/source.jpg")
        assert head["StorageClass"] == "GLACIER_IR"
        tags = store.client.get_object_tagging(Bucket=store.bucket, Key="tenant-a/images/abc123/source.jpg")
        assert tags["TagSet"] == [{"Key": "imagehost-class", "Value": "original"}]
        plain = store.client.get_object_tagging(Bucket=store.bucket, Key="tenant-a/images/abc123/w300.webp")
        assert plain["TagSet"] == []
    else:
        assert (store.root.with_name("store-tiers") / "GLACIER_IR" / "sources/kept01/source.jpg").is_file()
        assert not (store.root / "sources/kept01/source.jpg").exists()


def test_set_tier_moves_an_object_and_every_operation_follows_it(store):
    store.put("images/abc123/w1200.webp", BIG, "image/webp")
    store.put("images/abc123/sq64.webp", SMALL, "image/webp")
    before = {obj.key: obj for obj in store.objects("images/abc123")}
    store.set_tier("images/abc123/w1200.webp", "STANDARD_IA")
    store.set_tier("images/abc123/w1200.webp", "STANDARD_IA")  # again: nothing to do
    after = {obj.key: obj for obj in store.objects("images/abc123")}
    assert after["images/abc123/w1200.webp"].tier == "STANDARD_IA"
    assert after["images/abc123/sq64.webp"].tier == "STANDARD"
    assert store.get("images/abc123/w1200.webp") == BIG
    assert store.exists("images/abc123/w1200.webp")
    if isinstance(store, LocalStore):  # a move keeps the object's age, as S3's lifecycle does
        assert after["images/abc123/w1200.webp"].modified == before["images/abc123/w1200.webp"].modified
    store.set_tier("images/abc123/w1200.webp", "GLACIER_IR")
    assert tiers(store)["images/abc123/w1200.webp"] == "GLACIER_IR"
    assert sorted(store.folders("images")) == ["abc123"]
    with pytest.raises(KeyMissing):
        store.set_tier("images/abc123/w600.webp", "STANDARD_IA")
    store.delete("images/abc123/w1200.webp")
    assert not store.exists("images/abc123/w1200.webp")
    with pytest.raises(KeyMissing):
        store.get("images/abc123/w1200.webp")
    store.set_tier("images/abc123/sq64.webp", "STANDARD_IA")
    assert store.delete_prefix("images/abc123/") == 1
    assert list(store.objects("images")) == [] and list(store.folders("images")) == []


def test_an_overwrite_leaves_no_older_copy_in_another_tier(store):
    store.put("images/abc123/w600.webp", BIG, "image/webp")
    store.set_tier("images/abc123/w600.webp", "STANDARD_IA")
    store.put("images/abc123/w600.webp", b"new", "image/webp")
    assert store.get("images/abc123/w600.webp") == b"new"
    assert [(o.key, o.size) for o in store.objects("images/abc123")] == [("images/abc123/w600.webp", 3)]


def test_local_tier_directories_are_configurable_and_archives_refused(tmp_path):
    cold = tmp_path / "big-disk" / "cold"
    store = LocalStore(tmp_path / "store", {"GLACIER_IR": cold}, DEFAULT)
    store.put("sources/kept01/source.jpg", BIG, "image/jpeg")
    assert (cold / "sources/kept01/source.jpg").read_bytes() == BIG
    with pytest.raises(InvalidRequest):
        LocalStore(tmp_path / "other", {"GLACIER": tmp_path / "g"})
    with pytest.raises(InvalidRequest):
        store.set_tier("sources/kept01/source.jpg", "DEEP_ARCHIVE")
    with pytest.raises(ConfigError, match="local store has no GLACIER"):
        Settings.from_env({"IMAGEHOST_LIFECYCLE_ORIGINALS": "GLACIER:365"})
    Settings.from_env({"IMAGEHOST_LIFECYCLE_ORIGINALS": "GLACIER:365", "IMAGEHOST_STORE": "s3"})  # S3 has it
    settings = Settings.from_env({"IMAGEHOST_LOCAL_TIER_DIRS": f"GLACIER_IR={cold}", "IMAGEHOST_DATA_DIR":
                                  str(tmp_path / "var")})
    from origin.wiring import open_store

    opened = open_store(settings)
    assert dict(opened.roots)["GLACIER_IR"] == cold.resolve()
    assert dict(opened.roots)["STANDARD_IA"] == (tmp_path / "var" / "store-tiers" / "STANDARD_IA").resolve()


def test_local_readers_always_find_an_object_while_it_moves(tmp_path):
    """Transitions never break a read: an object moving colder is found in one tier or the next."""
    store = LocalStore(tmp_path / "store")
    names = [f"images/move{i:03d}/w300.webp" for i in range(200)]
    for name in names:
        store.put(name, BIG[:5000], "image/webp")
    missing: list[str] = []
    done = threading.Event()

    def reader():
        while not done.is_set():
            for name in names:
                try:
                    store.get(name)
                except KeyMissing:
                    missing.append(name)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    for tier in ("STANDARD_IA", "GLACIER_IR"):
        for name in names:
            store.set_tier(name, tier)
    done.set()
    for thread in threads:
        thread.join()
    assert missing == []
    assert set(tiers(store).values()) == {"GLACIER_IR"}


def test_s3_archived_object_raises_then_restores(s3_store):
    client, bucket = s3_store.client, s3_store.bucket
    client.put_object(Bucket=bucket, Key="tenant-a/images/arch01/source.jpg", Body=BIG, StorageClass="GLACIER")
    assert tiers(s3_store) == {"images/arch01/source.jpg": "GLACIER"}
    with pytest.raises(ObjectArchived) as info:
        s3_store.get("images/arch01/source.jpg")
    assert info.value.tier == "GLACIER" and info.value.key == "images/arch01/source.jpg"
    assert s3_store.restore("images/arch01/source.jpg", 2, "Bulk").state == "requested"
    head = client.head_object(Bucket=bucket, Key="tenant-a/images/arch01/source.jpg")
    assert "ongoing-request" in head["Restore"]
    assert s3_store.get("images/arch01/source.jpg") == BIG  # moto restores at once
    assert s3_store.restore("images/arch01/source.jpg", 2, "Bulk").state == "restored"
    s3_store.put("images/arch01/w300.webp", SMALL, "image/webp")
    assert s3_store.restore("images/arch01/w300.webp", 2, "Bulk").state == "not_archived"


def test_s3_placement_of_a_deep_archive_rule(s3_store):
    """An operator's 0-day rule writes straight into its tier (here the owner-only copies)."""
    settings = Settings(store="s3", lifecycle_kept_sources="DEEP_ARCHIVE:0")
    store = S3Store(s3_store.bucket, "tenant-a", s3_store.endpoint_url, placement=Rules.from_settings(settings)
                    .placement())
    store.put(keys.kept_source_key("kept09", "jpeg"), BIG, "image/jpeg")
    assert tiers(store, "sources") == {"sources/kept09/source.jpg": "DEEP_ARCHIVE"}
    with pytest.raises(ObjectArchived):
        store.get("sources/kept09/source.jpg")


def test_placement_is_plain_data():
    placement = Placement((("kept_source", "GLACIER_IR"),), 10, (("source", "a=b"),))
    assert placement.tier_for("sources/x1y2z3/source.png", 9) == "STANDARD"
    assert placement.tier_for("sources/x1y2z3/source.png", 10) == "GLACIER_IR"
    assert placement.tagging_for("images/x1y2z3/source.png") == "a=b"
