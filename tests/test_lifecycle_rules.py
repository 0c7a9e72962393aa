"""Lifecycle rules: the decisions, and `imagehost setup` installing them on a bucket of a real moto server."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid

import boto3
import pytest

from origin.config import ConfigError, Settings
from origin.lifecycle.rules import DAY, Rules
from origin.ports.setup_s3 import setup
from tests.servers import ROOT

DEFAULTS = Rules.from_settings(Settings())
BIG, SMALL = 300_000, 20_000


@pytest.mark.parametrize("key, size, days, tier", [
    ("images/c0ffee/w1200.avif", BIG, 29, "STANDARD"),
    ("images/c0ffee/w1200.avif", BIG, 30, "STANDARD_IA"),  # variants after 30 days
    ("images/c0ffee/w1200.avif", BIG, 4000, "STANDARD_IA"),  # and no colder: they are not originals
    ("images/c0ffee/sq150.webp", SMALL, 400, "STANDARD"),  # under 128 KB: cheaper where it is
    ("images/c0ffee/source.jpg", BIG, 100, "STANDARD_IA"),  # the images/ rule selects by prefix and size
    ("images/c0ffee/source.jpg", BIG, 365, "GLACIER_IR"),  # originals after a year
    ("images/c0ffee/master.jpg", BIG, 365, "GLACIER_IR"),
    ("images/c0ffee/intermediate.jpg", BIG, 400, "STANDARD_IA"),  # never an original's tier
    ("sources/c0ffee/source.jpg", BIG, 0, "GLACIER_IR"),  # owner-only copies: cold at once
    ("records/c0ffee.json", BIG, 900, "STANDARD"),
    ("uploads/c0ffee", BIG, 900, "STANDARD"),
])
def test_default_rules(key, size, days, tier):
    assert DEFAULTS.target(key, size, days * DAY) == tier


def test_rules_are_configurable_and_checked():
    rules = Rules.from_settings(Settings(store="s3", lifecycle_images="off", lifecycle_originals="DEEP_ARCHIVE:180",
                                         lifecycle_min_bytes=0))
    assert rules.target("images/c0ffee/w300.webp", 10, 9999 * DAY) == "STANDARD"
    assert rules.target("images/c0ffee/source.png", 10, 180 * DAY) == "DEEP_ARCHIVE"
    for bad, match in (({"IMAGEHOST_LIFECYCLE_IMAGES": "STANDARD_IA:10"}, "after 30 days"),
                       ({"IMAGEHOST_LIFECYCLE_IMAGES": "COLD:30"}, "unknown tier"),
                       ({"IMAGEHOST_LIFECYCLE_IMAGES": "GLACIER_IR:soon"}, "whole number"),
                       ({"IMAGEHOST_VARIANT_BUDGET": "lots"}, "VARIANT_BUDGET"),
                       ({"IMAGEHOST_LOCAL_TIER_DIRS": "GLACIER=/tmp/g"}, "no tier")):
        with pytest.raises(ConfigError, match=match):
            Settings.from_env(bad)
    assert Settings.from_env({"IMAGEHOST_VARIANT_BUDGET": "50G"}).variant_budget_bytes == 50 << 30


def test_s3_rules_select_by_prefix_size_and_tag():
    rules = {r["ID"]: r for r in DEFAULTS.s3_rules("tenant/")}
    assert rules["imagehost-images"] == {
        "ID": "imagehost-images", "Status": "Enabled",
        "Filter": {"And": {"Prefix": "tenant/images/", "ObjectSizeGreaterThan": 131071}},
        "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}]}
    assert rules["imagehost-originals"]["Filter"]["And"]["Tags"] == [{"Key": "imagehost-class", "Value": "original"}]
    assert rules["imagehost-originals"]["Transitions"] == [{"Days": 365, "StorageClass": "GLACIER_IR"}]
    assert rules["imagehost-kept-sources"]["Filter"]["And"]["Prefix"] == "tenant/sources/"
    assert rules["imagehost-kept-sources"]["Transitions"] == [{"Days": 0, "StorageClass": "GLACIER_IR"}]


def _settings(moto_server, bucket: str, **extra) -> Settings:
    return Settings(store="s3", s3_bucket=bucket, s3_prefix="tenant", s3_endpoint_url=moto_server, **extra)


def test_setup_installs_the_rules_on_the_bucket(moto_server):
    bucket = f"life-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_server)
    s3.create_bucket(Bucket=bucket)
    foreign = {"ID": "expire-logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 7}}
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [foreign]})
    settings = _settings(moto_server, bucket)
    out = setup(settings, Rules.from_settings(settings))
    assert out["lifecycle_rules"] == ["expire-logs", "imagehost-images", "imagehost-originals",
                                      "imagehost-kept-sources"]
    installed = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert set(installed) == {"expire-logs", "imagehost-images", "imagehost-originals", "imagehost-kept-sources"}
    assert installed["expire-logs"]["Expiration"] == {"Days": 7}  # the bucket's own rules stay
    images = installed["imagehost-images"]
    assert images["Status"] == "Enabled" and images["Filter"]["And"]["Prefix"] == "tenant/images/"
    assert images["Transitions"] == [{"Days": 30, "StorageClass": "STANDARD_IA"}]
    # (moto keeps And's Prefix and Tags, not ObjectSizeGreaterThan: the size condition is checked above)
    originals = installed["imagehost-originals"]
    assert originals["Filter"]["And"] == {"Prefix": "tenant/images/",
                                          "Tags": [{"Key": "imagehost-class", "Value": "original"}]}
    assert originals["Transitions"] == [{"Days": 365, "StorageClass": "GLACIER_IR"}]
    kept = installed["imagehost-kept-sources"]
    assert kept["Filter"]["And"]["Prefix"] == "tenant/sources/"
    assert kept["Transitions"] == [{"Days": 0, "StorageClass": "GLACIER_IR"}]

    # rerun with other settings: ours are replaced, not added; "off" drops one
    changed = _settings(moto_server, bucket, lifecycle_images="off", lifecycle_originals="DEEP_ARCHIVE:730")
    setup(changed, Rules.from_settings(changed))
    again = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert set(again) == {"expire-logs", "imagehost-originals", "imagehost-kept-sources"}
    assert again["imagehost-originals"]["Transitions"] == [{"Days": 730, "StorageClass": "DEEP_ARCHIVE"}]


def test_setup_command_over_http(moto_server, tmp_path):
    """`imagehost setup` as an operator runs it: the bucket, queue, notification and lifecycle, twice."""
    import os

    bucket = f"cmd-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "IMAGEHOST_STORE": "s3", "IMAGEHOST_S3_BUCKET": bucket, "IMAGEHOST_S3_ENDPOINT_URL":
           moto_server, "IMAGEHOST_DATA_DIR": str(tmp_path), "IMAGEHOST_LIFECYCLE_IMAGES": "GLACIER_IR:60"}
    for _ in range(2):
        done = subprocess.run([sys.executable, "-m", "origin.cli", "setup"], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["lifecycle_rules"] == ["imagehost-images", "imagehost-originals",
                                                              "imagehost-kept-sources"]
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_server)
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert rules["imagehost-images"]["Transitions"] == [{"Days": 60, "StorageClass": "GLACIER_IR"}]
