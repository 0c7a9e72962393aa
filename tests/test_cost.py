"""`imagehost cost`: the price arithmetic, price tables, and the command against a real origin (gunicorn)
whose delivery counted its store requests, on the local store; and storage classes read from moto."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests

from origin.config import ConfigError
from origin.lifecycle import cost, prices
from origin.lifecycle.inventory import Inventory, walk
from origin.lifecycle.prices import GB, KB128
from origin.ports.catalog import DedupSummary
from origin.ports.store import StoredObject
from tests.lifecycle_host import photo
from tests.servers import ROOT, start_origin, stop

SUMMARY = DedupSummary(records=4, contents=2, content_bytes=0, exact_aliases=1, exact_bytes=1000,
                       collapsed_records=1, collapsed_contents=1)


def inventory(*objects) -> Inventory:
    inv = Inventory()
    for key, size, tier in objects:
        inv.add(StoredObject(key, size, 0.0, tier))
    return inv


def test_storage_is_billed_as_the_provider_bills_it():
    inv = inventory(("images/a1b2c3/source.jpg", 1 << 30, "STANDARD"),  # 1 GiB
                    *((f"images/a1b2c3/w{i}.webp", 10_000, "STANDARD_IA") for i in range(1000)),  # small in IA
                    ("images/d4e5f6/source.jpg", 1 << 30, "DEEP_ARCHIVE"))
    out = cost.report(inv, prices.AWS, cost.Requests(), SUMMARY)
    rows = {(r["class"], r["tier"]): r for r in out["storage"]}
    assert rows[("source", "STANDARD")]["monthly_usd"] == pytest.approx(0.023)
    ia = rows[("variant", "STANDARD_IA")]
    assert ia["bytes"] == 10_000_000 and ia["billable_bytes"] == 1000 * KB128  # 128 KB minimum each
    assert ia["monthly_usd"] == pytest.approx(1000 * KB128 / GB * 0.0125, rel=1e-4)
    deep = inv.tallies[("source", "DEEP_ARCHIVE")]  # 32 KB of index at the tier's rate, 8 KB at STANDARD's
    assert cost.storage_cost(deep, "DEEP_ARCHIVE", prices.AWS) == pytest.approx(
        ((1 << 30) + 32768) / GB * 0.00099 + 8192 / GB * 0.023, rel=1e-9)
    total = out["monthly_usd"]["storage"]
    assert out["per_million_images"]["monthly_usd"] == pytest.approx(total / 4 * 1e6, rel=1e-3)
    assert out["per_million_images"]["by_tier"]["STANDARD"] == pytest.approx(0.023 / 4 * 1e6, rel=1e-3)


def test_requests_pay_their_tier_and_retrieval():
    inv = inventory(("images/a1b2c3/source.jpg", 1 << 20, "GLACIER_IR"), ("images/a1b2c3/w300.webp", 1 << 20,
                                                                          "STANDARD"))
    month = cost.Requests({("get", "source"): 1_000_000, ("put", "variant"): 1_000_000, ("get", "variant"): 2000,
                           ("delete", "variant"): 5})
    out = cost.report(inv, prices.AWS, month, SUMMARY)
    rows = {(r["op"], r["class"]): r["monthly_usd"] for r in out["requests"]["rows"]}
    assert rows[("get", "source")] == pytest.approx(1000 * 0.01 + 1e6 / 1024 * 0.03)  # GET + $0.03/GB read
    assert rows[("put", "variant")] == pytest.approx(1000 * 0.005)  # renders land in STANDARD
    assert rows[("get", "variant")] == pytest.approx(2 * 0.0004)
    assert rows[("delete", "variant")] == 0
    d = out["dedup"]  # per content, 1 MiB derived: one exact alias saved its upload and that; one collapse that
    assert d["exact_bytes_saved"] == 1000 + (1 << 20) // 2 and d["perceptual_bytes_saved"] == (1 << 20) // 2
    assert "per million images" in cost.table(out)


def test_price_tables(tmp_path):
    assert set(prices.TABLES) == {"aws", "r2", "gcs", "b2"}
    custom = tmp_path / "eu.json"
    custom.write_text(json.dumps({"base": "aws", "note": "eu-central-1", "tiers": {"STANDARD": {"storage": 0.0245}}}))
    table = prices.load(str(custom))
    assert table.tier("STANDARD").storage == 0.0245 and table.tier("GLACIER_IR").storage == 0.004
    assert table.note == "eu-central-1"
    with pytest.raises(ConfigError, match="no price for GLACIER_IR"):
        prices.R2.tier("GLACIER_IR")
    for bad in ({"tiers": {"COLD": {}}}, {"tiers": {"STANDARD": {"storage": 1, "put": 1, "get": 1, "cheap": 1}}},
                {"tiers": {"STANDARD_IA": {"storage": 1}}}):
        custom.write_text(json.dumps(bad))
        with pytest.raises(ConfigError):
            prices.load(str(custom))
    with pytest.raises(ConfigError, match="neither"):
        prices.load(str(tmp_path / "missing.json"))


def test_storage_classes_come_from_the_bucket(s3_store):
    s3_store.put("images/a1b2c3/source.jpg", b"s" * 300_000, "image/jpeg")
    s3_store.client.put_object(Bucket=s3_store.bucket, Key="tenant-a/images/a1b2c3/w1200.webp", Body=b"v" * 200_000,
                               StorageClass="STANDARD_IA")
    s3_store.client.put_object(Bucket=s3_store.bucket, Key="tenant-a/sources/d4e5f6/source.jpg", Body=b"k" * 1000,
                               StorageClass="GLACIER_IR")
    rows = {(r["class"], r["tier"]): r["objects"] for r in walk(s3_store).as_rows()}
    assert rows == {("source", "STANDARD"): 1, ("variant", "STANDARD_IA"): 1, ("kept_source", "GLACIER_IR"): 1}


def test_cost_command_against_a_running_origin(tmp_path):
    data = tmp_path / "var"
    origin = start_origin(data, {"IMAGEHOST_SCAN": "0", "IMAGEHOST_MODERATION": "off", "IMAGEHOST_WORKER_THREADS":
                                 "0"}, workers=1)
    try:
        sources = []
        for n in range(2):
            path = tmp_path / f"p{n}.jpg"
            path.write_bytes(photo(n))
            sources.append(path)
        done = origin.ingest(*sources)
        assert done.returncode == 0, done.stderr
        ids = [json.loads(line)["id"] for line in done.stdout.splitlines()]
        for image_id in ids:
            for _ in range(3):  # one render (a miss, a PUT), then store hits
                assert requests.get(f"{origin.url}/images/{image_id}/w300.webp", timeout=30).status_code == 200
        exposition = requests.get(f"{origin.url}/metrics", timeout=10).text
        assert 'imagehost_store_requests_total{class="variant",op="put"} 2.0' in exposition

        def cost_command(*args):
            run = subprocess.run([sys.executable, "-m", "origin.cli", "cost", *args], env=origin.env, cwd=ROOT,
                                 capture_output=True, text=True, timeout=60)
            assert run.returncode == 0, run.stderr
            return run.stdout

        out = json.loads(cost_command("--json"))  # request counts from the origin's metrics directory
        assert out["images"] == 2 and out["contents"] == 2
        rows = {(r["op"], r["class"]): r["counted"] for r in out["requests"]["rows"]}
        assert rows[("put", "variant")] == 2 and rows[("get", "variant")] == 6  # 2 misses + 4 hits
        assert rows[("get", "source")] == 2  # what the renders read
        storage = {(r["class"], r["tier"]): r["objects"] for r in out["storage"]}
        assert storage[("source", "STANDARD")] == 2 and storage[("variant", "STANDARD")] == 2
        assert out["per_million_images"]["monthly_usd"] > 0
        assert out["per_million_images"]["target_usd"] == 50.0
        scraped = json.loads(cost_command("--json", "--metrics", f"{origin.url}/metrics"))
        assert {(r["op"], r["class"]): r["counted"] for r in scraped["requests"]["rows"]} == rows
        text = cost_command()
        for words in ("class", "source", "STANDARD", "requests (counted over", "per million images"):
            assert words in text, text
    finally:
        stop(origin.proc)


def test_reads_whose_tier_is_known_are_priced_exactly():
    inv = inventory(("images/a1b2c3/w1200.webp", 1 << 20, "STANDARD_IA"), ("images/a1b2c3/w300.webp", 1000,
                                                                           "STANDARD"))
    month = cost.Requests(by_tier={("get", "variant", "STANDARD"): [1000, 10 << 20],
                                   ("get", "variant", "STANDARD_IA"): [1000, 1 << 30],
                                   ("put", "variant", "STANDARD"): [2000, 0]})
    rows = {(r["op"], r["class"]): r for r in cost.report(inv, prices.AWS, month, SUMMARY)["requests"]["rows"]}
    assert rows[("get", "variant")]["per_month"] == 2000
    assert rows[("get", "variant")]["monthly_usd"] == pytest.approx(0.0004 + 0.001 + 0.01)  # GETs + 1 GiB from IA
    assert rows[("put", "variant")]["monthly_usd"] == pytest.approx(0.01)


def test_lifecycle_tags_are_billed():
    inv = inventory(("images/a1b2c3/source.jpg", 1000, "STANDARD"), ("images/d4e5f6/source.jpg", 1000, "STANDARD"))
    out = cost.report(inv, prices.AWS, cost.Requests(), SUMMARY, tagged={"source"})
    tags = [r for r in out["storage"] if r["class"] == "tags"]
    assert tags and tags[0]["objects"] == 2 and tags[0]["monthly_usd"] == pytest.approx(2 * 0.01 / 10_000)
