"""Dedup through the worker's real steps, the delivery app (falcon.testing) and `imagehost compact`
(a subprocess, killed with SIGKILL at each step), on the local store with each catalog adapter:
SQLite and the local PostgreSQL (a private schema per test)."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import pytest
from falcon import testing
from PIL import Image
from prometheus_client import CollectorRegistry

from origin import keys
from origin.app import create_app
from origin.config import Settings
from origin.http.images import remove_image
from origin.ingest import dedup
from origin.ingest.compact import STEPS, Compactor, compact
from origin.ingest.originals import new_id
from origin.ingest.worker import Pipeline, run_job
from origin.keys import upload_key
from origin.pipeline import fallback
from origin.metrics import build_metrics
from origin.pipeline.variants import owner_source_key
from origin.ports.catalog import ImageRecord
from origin.ports.hash_index import hamming, phash_int
from origin.ports.moderation_fixed import FixedModerator
from origin.ports.scanner import ScanOff
from origin import wiring
from origin.wiring import hash_index_for, open_catalog, open_store
from tests import images
from tests.servers import ROOT
from tests.backends import private_schema

PHOTOS = images.PHOTO_DIR / "nature"


def picture(width: int = 800, height: int = 600) -> Image.Image:
    return images.scene(width, height)


def encode(image: Image.Image, quality: int = 92) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def resized(image: Image.Image, factor: float = 0.9) -> Image.Image:
    return image.resize((round(image.width * factor), round(image.height * factor)), Image.LANCZOS)


class CountingModerator(FixedModerator):
    def __init__(self, score: float):
        super().__init__(score)
        self.calls = 0

    def score(self, image: bytes):
        self.calls += 1
        return super().score(image)


@dataclass
class Host:
    settings: Settings
    store: object
    catalog: object
    pipe: Pipeline
    metrics: object

    def client(self) -> testing.TestClient:
        return testing.TestClient(create_app(self.settings, self.store, self.catalog, self.metrics))

    def upload(self, data: bytes, owner: str = "alice") -> str:
        image_id = new_id()
        self.catalog.add(ImageRecord(id=image_id, content_type="", width=0, height=0, bytes=len(data), sha256="",
                                     state="uploaded", owner=owner, created_at=datetime.now(timezone.utc)))
        self.store.put(upload_key(image_id), data, "")
        run_job(self.pipe, image_id)
        return image_id

    def record(self, image_id: str):
        return self.catalog.get(image_id)

    def download(self, image_id: str) -> bytes:
        """What the owner-only original download reads."""
        return self.store.get(owner_source_key(self.record(image_id)))

    def folders(self, top: str = "images") -> set[str]:
        return set(self.store.folders(top))

    def live_contents(self, *ids) -> set[str]:
        return {self.record(i).content for i in ids}

    def settle(self, timeout: float = 15) -> None:
        """Wait for the worker's deferred deletes (after the grace)."""
        deadline = time.monotonic() + timeout
        while self.catalog.open_merges():
            assert time.monotonic() < deadline, self.catalog.open_merges()
            time.sleep(0.1)

    def compact(self, stop_after: str = "") -> subprocess.CompletedProcess:
        """`imagehost compact` in a process of its own, with this host's settings."""
        mine = {name: getattr(self.settings, name) for name in (
            "data_dir", "catalog_url", "record_cache_seconds", "dedup_perceptual", "dedup_perceptual_optout",
            "dedup_inline", "dedup_distance")}
        environ = {**os.environ, "IMAGEHOST_COMPACT_STOP_AFTER": stop_after,
                   **{f"IMAGEHOST_{k.upper()}": str(int(v) if isinstance(v, bool) else v) for k, v in mine.items()}}
        environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        return subprocess.run([sys.executable, "-m", "origin.cli", "compact"], env=environ, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)


def make_host(tmp_path, catalog_url: str, moderator=None, store=None, **overrides) -> Host:
    settings = Settings(data_dir=tmp_path / "var", catalog_url=catalog_url, scan=False, moderation="fixed:0.1",
                        record_cache_seconds=0.3, **overrides)
    store, catalog = store or open_store(settings), open_catalog(settings.catalog)
    metrics = build_metrics(CollectorRegistry())
    pipe = Pipeline(settings, store, catalog, None, ScanOff(), moderator or FixedModerator(0.1), metrics,
                    hash_index_for(settings.catalog))
    return Host(settings, store, catalog, pipe, metrics)


@pytest.fixture(params=["sqlite", "postgres"])
def catalog_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'catalog.sqlite3'}"
        return
    with private_schema("t_dedup") as url:
        yield url
        index = wiring._indexes.pop(url, None)  # the process-wide index of this schema
        if index is not None:
            index.close()


@pytest.fixture
def host(tmp_path, catalog_url):
    made = make_host(tmp_path, catalog_url)
    yield made
    made.settle()
    made.catalog.close()


def served_phash(client, image_id: str, variant: str = "w300.png") -> int:
    resp = client.simulate_get(f"/images/{image_id}/{variant}")
    assert resp.status_code == 200, (image_id, variant, resp.text)
    return phash_int(Image.open(io.BytesIO(resp.content)).convert("RGB"))


def counter(metrics, name: str, **labels) -> float:
    return sum(s.value for m in getattr(metrics, name).collect() for s in m.samples
               if s.name.endswith("_total") and all(s.labels.get(k) == v for k, v in labels.items()))


# ---------------------------------------------------------------------------- exact


def test_exact_duplicate_is_an_alias_of_one_content(host):
    photo = images.gps_jpeg()
    first, second = host.upload(photo), host.upload(photo, owner="bob")
    for image_id in (first, second):
        assert host.record(image_id).state == "ready"
    assert host.live_contents(first, second) == {first}
    assert host.folders() == {first}  # one source, one set of thumbnails
    assert sorted(p.name for p in (host.settings.store_dir / "images" / first).iterdir()
                  if p.name.startswith("source")) == ["source.jpg"]
    assert host.catalog.get_content(first).refs == 2
    client = host.client()
    assert served_phash(client, first) == served_phash(client, second)
    assert host.download(first) == photo and host.download(second) == photo  # equal bytes, by definition
    assert counter(host.metrics, "duplicates", kind="exact") == 1
    assert counter(host.metrics, "dedup_bytes_saved") >= len(photo)


def test_an_alias_reuses_the_contents_moderation(tmp_path, catalog_url):
    moderator = CountingModerator(0.9)  # over the threshold: held
    host = make_host(tmp_path, catalog_url, moderator=moderator)
    photo = images.jpeg(picture(500, 400))
    first, second = host.upload(photo), host.upload(photo, owner="bob")
    assert host.record(first).state == host.record(second).state == "held"
    assert moderator.calls == 1  # the same bytes are not scored twice
    assert host.record(second).nsfw_score == 0.9
    host.catalog.close()


# ----------------------------------------------------------------------- perceptual


def test_a_smaller_near_duplicate_is_linked_to_the_existing_content(host):
    big = host.upload(encode(picture()))
    client = host.client()
    before = served_phash(client, big)
    small = host.upload(encode(resized(picture())), owner="bob")  # −10 %: worse, so it collapses
    requant = host.upload(encode(picture(), quality=60), owner="carol")  # same size, newer: collapses too
    for image_id in (small, requant):
        rec = host.record(image_id)
        assert rec.state == "ready" and rec.content_id == big
        assert (rec.width, rec.height) != (0, 0)
    host.settle()
    assert host.folders() == {big} and host.catalog.get_content(big).refs == 3
    assert host.folders("sources") == {small, requant}  # their untouched uploads, owner only
    assert host.download(small) == encode(resized(picture()))
    assert host.download(requant) == encode(picture(), quality=60)
    assert served_phash(client, small) == served_phash(client, requant) == before
    resp = client.simulate_get(f"/images/{small}/w600.png")
    assert images.size(resp.content) == (600, 450)
    assert counter(host.metrics, "duplicates", kind="perceptual") == 2


def test_a_bigger_near_duplicate_becomes_canonical_and_the_older_records_move(host):
    small = host.upload(encode(resized(picture(), 0.8)))
    small_twin = host.upload(encode(resized(picture(), 0.8)), owner="dave")  # an exact alias of it
    client = host.client()
    before = {i: served_phash(client, i) for i in (small, small_twin)}
    big = host.upload(encode(picture()), owner="bob")
    for image_id in (small, small_twin):
        assert host.record(image_id).content_id == big
    # within the grace the old content's objects are still there (a cached record may read them)
    assert small in host.folders()
    for image_id in (small, small_twin, big):
        assert hamming(served_phash(client, image_id), before[small]) <= 6
    host.settle()
    assert host.folders() == {big} and host.folders("sources") == {small}
    for image_id in (small, small_twin, big):  # the record fallback names the keys that remain
        assert fallback.read(host.store, image_id).content_id == big
    assert host.download(small) == host.download(small_twin) == encode(resized(picture(), 0.8))
    fresh = host.client()
    assert images.size(fresh.simulate_get(f"/images/{small}/w600.png").content) == (600, 450)  # better now
    assert host.catalog.get_content(big).refs == 3


def test_different_photos_are_not_collapsed(host):
    ids = [host.upload(path.read_bytes()) for path in (PHOTOS / "Aqua.jpg", PHOTOS / "Garden.jpg")]
    ids.append(host.upload(images.jpeg(picture())))
    assert host.live_contents(*ids) == set(ids)
    assert host.folders() == set(ids)


@pytest.mark.parametrize("switch", ["global", "owner"])
def test_perceptual_dedup_can_be_switched_off(tmp_path, catalog_url, switch):
    settings = {"dedup_perceptual": False} if switch == "global" else {"dedup_perceptual_optout": "bob, erin"}
    host = make_host(tmp_path, catalog_url, **settings)
    first = host.upload(encode(picture()))
    second = host.upload(encode(resized(picture())), owner="bob")
    assert host.live_contents(first, second) == {first, second}  # not collapsed
    if switch == "owner":  # other owners' near-duplicates still collapse, never into or out of bob's
        third = host.upload(encode(picture(), quality=60), owner="carol")
        assert host.record(third).content_id == first
    exact = host.upload(encode(picture()), owner="bob")
    assert host.record(exact).content_id == first  # exact dedup stays on
    report = host.compact()
    assert report.returncode == 0, report.stderr
    assert host.record(second).content_id == second
    host.settle()
    host.catalog.close()


# ------------------------------------------------------------------------- deletion


def test_deleting_one_alias_keeps_the_other_and_the_last_removes_the_content(host):
    photo = images.jpeg(picture(640, 480))
    first, second = host.upload(photo), host.upload(photo, owner="bob")
    near = host.upload(encode(resized(picture(640, 480))), owner="carol")  # linked, with a kept source
    host.settle()
    forgotten = []
    remove_image(host.store, host.catalog, None, forgotten.append, first)
    assert forgotten == [first]
    client = host.client()
    assert client.simulate_get(f"/images/{first}/w300.webp").status_code == 404
    assert client.simulate_get(f"/images/{second}/w300.webp").status_code == 200
    assert host.download(second) == photo and host.folders() == {first}  # the content keeps its first id
    remove_image(host.store, host.catalog, None, forgotten.append, second)
    assert host.folders() == {first} and host.catalog.get_content(first).refs == 1  # carol still uses it
    remove_image(host.store, host.catalog, None, forgotten.append, near)
    assert host.folders() == set() and host.folders("sources") == set()  # nothing left behind
    assert host.catalog.reclaimable(0, 10) == []
    assert client.simulate_get(f"/images/{near}/w300.webp").status_code == 404


# ----------------------------------------------------------------------- compaction


def late_duplicates(host):
    """Uploads the worker did not collapse (inline dedup off): a small one, its exact twin, a big one."""
    small = host.upload(encode(resized(picture(), 0.8)))
    twin = host.upload(encode(resized(picture(), 0.8)), owner="dave")
    big = host.upload(encode(picture()), owner="bob")
    other = host.upload((PHOTOS / "LadyBird.jpg").read_bytes(), owner="carol")
    assert host.live_contents(small, twin, big, other) == {small, big, other}
    return small, twin, big, other


def check_everything_serves(host, ids, uploads, reference):
    client = host.client()
    for image_id in ids:
        for variant in ("w300.png", "sq150.webp", "original"):
            assert client.simulate_get(f"/images/{image_id}/{variant}").status_code == 200, (image_id, variant)
        assert hamming(served_phash(client, image_id), reference[image_id]) <= 6
    for image_id, data in uploads.items():
        assert host.download(image_id) == data


@pytest.mark.parametrize("step", STEPS)
def test_compaction_killed_at_each_step_loses_nothing(tmp_path, catalog_url, step):
    host = make_host(tmp_path, catalog_url, dedup_inline=False)
    small, twin, big, other = late_duplicates(host)
    ids = (small, twin, big, other)
    uploads = {small: encode(resized(picture(), 0.8)), twin: encode(resized(picture(), 0.8)),
               big: encode(picture()), other: (PHOTOS / "LadyBird.jpg").read_bytes()}
    cached = testing.TestClient(create_app(replace(host.settings, record_cache_seconds=60), host.store,
                                           host.catalog, host.metrics))  # a gunicorn worker's long cache
    reference = {i: served_phash(cached, i) for i in ids}

    killed = host.compact(stop_after=step)
    assert killed.returncode == -9, killed.stderr  # SIGKILL, right after `step`
    check_everything_serves(host, ids, uploads, reference)
    for image_id in ids:  # a worker that still has the old record cached serves too
        assert cached.simulate_get(f"/images/{image_id}/w150.webp").status_code == 200
    if step in ("plan", "preserve"):
        assert host.record(small).content_id == small  # nothing moved yet
    elif step in ("repoint", "grace"):
        assert host.record(small).content_id == big and small in host.folders()  # not deleted yet

    rerun = host.compact()
    assert rerun.returncode == 0, rerun.stderr
    check_everything_serves(host, ids, uploads, reference)
    assert {host.record(i).content_id for i in (small, twin, big)} == {big}
    assert host.folders() == {big, other} and host.folders("sources") == {small}
    assert host.catalog.open_merges() == [] and host.catalog.reclaimable(0, 10) == []
    assert host.catalog.get_content(big).refs == 3
    again = host.compact()  # nothing left to do
    assert again.returncode == 0 and json.loads(again.stdout)["repointed"] == 0
    host.catalog.close()


def test_compaction_sweeps_orphans(host):
    image_id = host.upload(images.jpeg(picture(300, 200)))
    store_dir = host.settings.store_dir
    orphans = [store_dir / "images" / "orphan1" / "w300.webp", store_dir / "sources" / "orphan2" / "source.jpg"]
    fresh = store_dir / "images" / "fresh1" / "w300.webp"
    for path in (*orphans, fresh):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
    old = time.time() - 3600
    for path in orphans:
        os.utime(path, (old, old))
    # a delete that died after its record went: the content is `deleting` with its objects
    twin = host.upload((PHOTOS / "Garden.jpg").read_bytes(), owner="bob")
    host.catalog.remove_record(twin)
    assert twin in host.folders()
    report = host.compact()
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["orphans"] == 2 and json.loads(report.stdout)["reclaimed"] == 1
    assert host.folders() == {image_id, "fresh1"} and host.folders("sources") == set()
    assert host.client().simulate_get(f"/images/{image_id}/w300.webp").status_code == 200


def test_a_cached_record_whose_content_went_is_read_again(host):
    small = host.upload(encode(resized(picture(), 0.8)))
    client = testing.TestClient(create_app(replace(host.settings, record_cache_seconds=60), host.store,
                                           host.catalog, host.metrics))
    served_phash(client, small, "w150.png")  # cached now, with the small content's keys
    host.upload(encode(picture()), owner="bob")  # small collapses into it
    merge = [m for m in host.catalog.open_merges()][0]
    ctx = host.pipe.compactor()
    ctx = replace(ctx, policy=replace(ctx.policy, grace_seconds=0))
    from origin.ingest.compact import delete

    assert delete(ctx, host.catalog.get_merge(merge.id))  # too early on purpose
    assert small not in host.folders()
    assert client.simulate_get(f"/images/{small}/w300.png").status_code == 200  # re-read, not a 404


def test_compaction_on_s3(tmp_path, s3_store):
    """The same steps on the S3 adapter (moto): its folders are listed and measured through the API."""
    host = make_host(tmp_path, f"sqlite:///{tmp_path / 'catalog.sqlite3'}", store=s3_store, dedup_inline=False)
    small, twin, big, other = late_duplicates(host)
    s3_store.put("images/orphan1/w300.webp", b"x", "image/webp")
    s3_store.put("sources/orphan2/source.jpg", b"x", "image/jpeg")
    ctx = Compactor(host.store, host.catalog, host.pipe.index, dedup.Policy.from_settings(host.settings),
                    host.metrics, orphan_min_age=0)
    client = host.client()
    served_phash(client, big, "w600.png")  # a lazy variant, so the reclaimed content held more than its source
    served_phash(client, small, "w600.png")
    report = compact(ctx)
    assert (report.planned, report.repointed, report.deleted, report.orphans) == (1, 1, 1, 2)
    assert host.folders() == {big, other} and host.folders("sources") == {small}
    assert host.download(small) == host.download(twin) == encode(resized(picture(), 0.8))
    assert images.size(host.client().simulate_get(f"/images/{twin}/w600.png").content) == (600, 450)
    assert counter(host.metrics, "duplicates", kind="perceptual") == 1
    assert counter(host.metrics, "dedup_bytes_saved") > 0
    host.catalog.close()


def test_a_record_from_before_contents_still_serves_and_deletes(host):
    """Data made before contents existed: no content_id, objects under the record's own id."""
    photo = images.jpeg(picture(400, 300))
    legacy = new_id()
    host.store.put(keys.source_key(legacy, "jpeg"), photo, "image/jpeg")
    host.catalog.add(ImageRecord(id=legacy, content_type="image/jpeg", width=400, height=300, bytes=len(photo),
                                 sha256="", state="ready", owner="alice", created_at=datetime.now(timezone.utc)))
    client = host.client()
    assert images.size(client.simulate_get(f"/images/{legacy}/w300.webp").content) == (300, 225)
    assert host.download(legacy) == photo
    assert host.compact().returncode == 0 and legacy in host.folders()  # a record's own folder is no orphan
    remove_image(host.store, host.catalog, None, lambda _: None, legacy)
    assert legacy not in host.folders()


def test_heic_aliases_share_the_decoded_master(host):
    heic = images.hevc_heic(640, 480)
    first, second = host.upload(heic), host.upload(heic, owner="bob")
    assert host.record(second).content_id == first and host.folders() == {first}
    assert host.store.exists(keys.master_key(first, False))
    client = host.client()
    for image_id in (first, second):
        resp = client.simulate_get(f"/images/{image_id}/w300.webp")
        assert resp.status_code == 200 and images.size(resp.content) == (300, 225)
        assert host.download(image_id) == heic
