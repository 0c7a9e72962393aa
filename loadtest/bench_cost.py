"""Cost benchmark: what a million images cost a month, with the lifecycle applied over 90 simulated days.

    make bench-cost
    .venv/bin/python loadtest/bench_cost.py [--bases N] [--days 90] [--reads-per-image-month 20]
                                            [--budget-per-image 512K] [--prices aws] [--json FILE]

    uploads   loadtest/cost_corpus.py: every Debian wallpaper once, mirrored, every other one
              cropped (≥ 200 distinct contents), plus ~15 % exact and near duplicates, spread
              over the first 30 days, through the worker's real steps (validation, metadata,
              hashes, inline dedup, 12 eager thumbnails; scan and moderation off)
    reads     what reaches the origin (CDN misses), through the real delivery: each day
              images × reads-per-image-month / 30 reads, the image drawn by Zipf popularity
              (s = 1.1, random ranks) times an age decay (half-life 30 days), the variant from a
              gallery-and-page mix (thumbnails 40 %; w300 / w600 / w1200 in AVIF 60 %, WebP 30 %,
              JPEG 10 %; the original 5 %)
    lifecycle `imagehost lifecycle`'s code once a simulated day (transitions on the local store,
              as S3's rules would move the objects, and eviction to IMAGEHOST_VARIANT_BUDGET =
              budget-per-image × images); the clock is simulated: object times and access times
              are set to the simulated day, nothing waits
    cost      at the end of each 30-day month: a store walk, the month's store requests as the
              delivery's metrics counted them (plus the LIST requests that daily walks and
              evictions would make on S3), priced by origin/lifecycle/cost.py; per million images
              = monthly cost / ready images × 10^6, against the $50 target
    baseline  the same final month with no lifecycle: every object STANDARD, nothing evicted
    projection the same objects a year older (originals in Glacier IR), same requests

The figures are bytes and counts, not timings: the load of the machine changes how long it runs
(about 6 minutes on 2 cores), not what it prints. Exit status 0 when month 3 is within the target.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from prometheus_client import CollectorRegistry  # noqa: E402

from cost_corpus import corpus  # noqa: E402
from origin import keys  # noqa: E402
from origin.config import Settings, parse_bytes  # noqa: E402
from origin.ingest.originals import new_id  # noqa: E402
from origin.ingest.worker import Pipeline, run_job  # noqa: E402
from origin.lifecycle import cost, prices  # noqa: E402
from origin.lifecycle.inventory import Inventory, walk  # noqa: E402
from origin.lifecycle.rules import DAY, Rules  # noqa: E402
from origin.lifecycle.run import Lifecycle, run  # noqa: E402
from origin.metrics import build_metrics  # noqa: E402
from origin.pipeline.render import configure_libvips  # noqa: E402
from origin.pipeline.request import parse  # noqa: E402
from origin.pipeline.variants import Delivery  # noqa: E402
from origin.ports.catalog import ImageRecord  # noqa: E402
from origin.ports.moderation import OffModerator  # noqa: E402
from origin.ports.scanner import ScanOff  # noqa: E402
from origin.ports.store_local import LocalStore  # noqa: E402
from origin.wiring import hash_index_for, open_catalog  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
MONTH_DAYS = 30
ZIPF_S = 1.1
HALF_LIFE_DAYS = 30.0
INGEST_DAYS = 30
FORMATS = (("avif", 0.6), ("webp", 0.3), ("jpeg", 0.1))
MIX = (("thumb", 0.40), ("w300", 0.15), ("w600", 0.20), ("w1200", 0.20), ("original", 0.05))
THUMBS = ("sq150.webp", "sq150.avif", "sm150.webp", "sm150.avif", "sq300.avif", "sq64.webp")


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self) -> float:
        return self.now


class SimStore(LocalStore):
    """The local store, with every write dated by the simulated clock (what S3's LastModified would say)."""

    def __init__(self, root, clock: Clock, placement):
        super().__init__(root, placement=placement)
        self.clock = clock
        self.reads: dict = {}  # (class, tier) → [reads, bytes]: what S3 would bill each read at

    def get(self, key):
        found = self._located(key)
        data = super().get(key)
        entry = self.reads.setdefault((keys.object_class(key), found[0][0] if found else "STANDARD"), [0, 0])
        entry[0] += 1
        entry[1] += len(data)
        return data

    def put(self, key, data, content_type=""):
        super().put(key, data, content_type)
        for _, path in self._located(key):
            os.utime(path, (self.clock.now, self.clock.now))


def pick(rng: random.Random, table) -> str:
    x, acc = rng.random(), 0.0
    for name, weight in table:
        acc += weight
        if x < acc:
            return name
    return table[-1][0]


def variant_name(rng: random.Random) -> str:
    kind = pick(rng, MIX)
    if kind == "thumb":
        return rng.choice(THUMBS)
    if kind == "original":
        return "original"
    return f"{kind}.{pick(rng, FORMATS)}"


class Bench:
    def __init__(self, args, workdir: Path):
        self.args = args
        self.rng = random.Random(args.seed)
        self.clock = Clock()
        self.settings = Settings(data_dir=workdir, scan=False, moderation="off", worker_threads=0,
                                 record_cache_seconds=0.0, access_flush_seconds=1e9, prices=args.prices)
        self.rules = Rules.from_settings(self.settings)
        self.store = SimStore(self.settings.store_dir, self.clock, self.rules.placement())
        self.catalog = open_catalog(self.settings.catalog)
        self.metrics = build_metrics(CollectorRegistry())
        self.pipe = Pipeline(self.settings, self.store, self.catalog, None, ScanOff(), OffModerator(), self.metrics,
                             hash_index_for(self.settings.catalog))
        self.delivery = Delivery(self.store, self.catalog, self.settings, self.metrics)
        self.delivery.store.usage.clock = self.clock  # accesses on the simulated clock
        self.images: list[tuple[str, float, float]] = []  # (record id, popularity, uploaded at)
        self.lists = 0  # LIST requests the lifecycle would make on S3
        self.reads = self.renders_before = 0
        self.months: list[dict] = []

    # ------------------------------------------------------------------ steps

    def ingest(self, upload) -> None:
        image_id = new_id()
        self.catalog.add(ImageRecord(id=image_id, content_type="", width=0, height=0, bytes=len(upload.data),
                                     sha256="", state="uploaded", owner=f"owner{self.rng.randrange(50)}",
                                     filename=upload.name, created_at=datetime.now(timezone.utc)))
        self.store.put(keys.upload_key(image_id), upload.data, "")
        if run_job(self.pipe, image_id) == "ready":
            rank = len(self.images) + 1
            self.images.append((image_id, 1.0 / rank ** ZIPF_S, self.clock.now))

    def read_day(self, day: int) -> None:
        count = round(len(self.images) * self.args.reads_per_image_month / MONTH_DAYS)
        if not count:
            return
        order = list(range(len(self.images)))
        self.rng.shuffle(order)  # popularity ranks are not upload order
        weights = [self.images[order[i]][1] * 0.5 ** ((self.clock.now - self.images[i][2]) / DAY / HALF_LIFE_DAYS)
                   for i in range(len(self.images))]
        for i in self.rng.choices(range(len(self.images)), weights=weights, k=count):
            image_id = self.images[i][0]
            name = variant_name(self.rng)
            request = parse(image_id, name, self.settings.widths, self.settings.thumb_sizes)
            self.delivery.variant(request, None)
            self.reads += 1

    def lifecycle(self) -> object:
        self.delivery.store.usage.flush()
        budget = parse_bytes(self.args.budget_per_image) * len(self.images)
        ctx = Lifecycle(self.store, self.catalog, self.rules, budget, self.metrics, transitions=True,
                        min_idle=3600.0)
        report = run(ctx, now=self.clock.now)
        self.lists += report.objects / 1000 + report.evicted_contents  # a walk's pages; a listing per eviction
        return report

    # ------------------------------------------------------------------ figures

    def requests_since(self, before: dict) -> tuple[dict, dict]:
        now = self.request_counts()
        return {k: v - before.get(k, 0.0) for k, v in now.items() if v - before.get(k, 0.0) > 0}, now

    def request_counts(self) -> dict:
        out = {}
        for family in self.metrics.store_requests.collect():
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    out[(sample.labels["op"], sample.labels["class"])] = sample.value
        return out

    def counter(self, metric) -> float:
        return sum(s.value for f in metric.collect() for s in f.samples if s.name.endswith("_total"))

    def month_requests(self, requests: dict, reads: dict) -> cost.Requests:
        """The month's requests, each read at the tier it was read from (the store saw it)."""
        placed = dict(self.rules.placement().tiers)
        by_tier = {("get", cls, tier): value for (cls, tier), value in reads.items()}
        for (op, cls), count in requests.items():
            if op != "get":
                by_tier[(op, cls, placed.get(cls, "STANDARD"))] = [count, 0]
        by_tier[("list", "listing", "STANDARD")] = [self.lists, 0]
        return cost.Requests(by_tier=by_tier)

    def month_report(self, requests: cost.Requests, table) -> dict:
        inventory = walk(self.store)
        placement = self.rules.placement()
        return cost.report(inventory, table, requests, self.catalog.dedup_summary(), dict(placement.tiers),
                           {cls for cls, _ in placement.tags}), inventory


def flattened(requests: cost.Requests) -> cost.Requests:
    """The same requests with every object in STANDARD (no retrieval fees)."""
    out: dict = {}
    for (op, cls, _), (count, size) in requests.by_tier.items():
        entry = out.setdefault((op, cls, "STANDARD"), [0, 0])
        entry[0] += count
        entry[1] += size
    return cost.Requests(by_tier=out)


def spread(requests: cost.Requests) -> cost.Requests:
    """The same requests by (op, class) only: priced over the tiers the class's objects sit in."""
    out: dict = {}
    for (op, cls, _), (count, _size) in requests.by_tier.items():
        out[(op, cls)] = out.get((op, cls), 0) + count
    return cost.Requests(out)


def baseline(inventory: Inventory, evicted_bytes: int) -> Inventory:
    """The same objects with no lifecycle: all in STANDARD, and what eviction removed still stored."""
    flat = Inventory()
    for (cls, _), tally in inventory.tallies.items():
        into = flat.tallies.setdefault((cls, "STANDARD"), type(tally)())
        into.objects += tally.objects
        into.bytes += tally.bytes
    if evicted_bytes:
        flat.tallies[("variant", "STANDARD")].bytes += evicted_bytes
    return flat


def aged(store, rules: Rules, now: float, years: float = 1.0) -> Inventory:
    """The objects as they would sit `years` later, by the same rules (no new objects, none removed)."""
    out = Inventory()
    for top in ("images", "sources", "records"):
        for obj in store.objects(top):
            tier = rules.target(obj.key, obj.size, now + years * 365 * DAY - obj.modified)
            out.add(replace(obj, tier=tier))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", type=int, default=0, help="use only the first N wallpapers (0: all)")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--reads-per-image-month", type=float, default=20.0)
    parser.add_argument("--budget-per-image", default="512K", help="IMAGEHOST_VARIANT_BUDGET per ready image")
    parser.add_argument("--prices", default="aws")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default="", help="write every figure to this file too")
    parser.add_argument("--keep", default="", help="keep the simulated data dir here (then: IMAGEHOST_DATA_DIR=… "
                                                   "imagehost cost)")
    args = parser.parse_args()
    configure_libvips()
    started = time.monotonic()
    uploads = corpus(args.bases, args.seed)
    distinct = sum(u.kind in ("photo", "mirror", "crop") for u in uploads)
    print(f"uploads: {len(uploads)} ({distinct} distinct pictures from {sum(u.kind == 'photo' for u in uploads)} "
          f"wallpapers, {len(uploads) - distinct} duplicates: "
          f"{sum(u.kind == 'exact' for u in uploads)} exact, {sum(u.kind == 'near' for u in uploads)} near), "
          f"mean {sum(len(u.data) for u in uploads) / len(uploads) / 1e6:.2f} MB", flush=True)
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="imagehost-bench-cost-"))
    table = prices.load(args.prices)
    try:
        bench = Bench(args, workdir)
        per_day = math.ceil(len(uploads) / INGEST_DAYS)
        before: dict = {}
        reads_before: dict = {}
        evicted_before = rerenders_before = 0.0
        for day in range(args.days):
            bench.clock.now = T0 + day * DAY
            for upload in uploads[day * per_day:(day + 1) * per_day]:
                bench.ingest(upload)
            bench.clock.now += DAY / 2
            bench.read_day(day)
            bench.clock.now = T0 + (day + 1) * DAY - 60
            report = bench.lifecycle()
            if (day + 1) % MONTH_DAYS == 0:
                month = (day + 1) // MONTH_DAYS
                requests, before = bench.requests_since(before)
                reads = {k: [v[0] - reads_before.get(k, [0, 0])[0], v[1] - reads_before.get(k, [0, 0])[1]]
                         for k, v in bench.store.reads.items()}
                reads_before = {k: list(v) for k, v in bench.store.reads.items()}
                month_requests = bench.month_requests(requests, reads)
                out, inventory = bench.month_report(month_requests, table)
                evicted = bench.counter(bench.metrics.evicted_bytes)
                rerenders = bench.counter(bench.metrics.eviction_rerenders)
                out["month"] = month
                out["evicted_bytes_month"] = evicted - evicted_before
                out["evictions_total"] = bench.counter(bench.metrics.evictions)
                out["rerenders_month"] = rerenders - rerenders_before
                out["renders_total"] = bench.counter(bench.metrics.renders)
                out["reads_total"] = bench.reads
                out["variant_bytes"] = inventory.total(cls="variant").bytes
                out["budget"] = report.budget
                evicted_before, rerenders_before = evicted, rerenders
                bench.lists = 0
                bench.months.append(out)
                print_month(out)
        last = bench.months[-1]
        base_inv = baseline(walk(bench.store), int(bench.counter(bench.metrics.evicted_bytes)))
        flat = cost.report(base_inv, table, flattened(month_requests), bench.catalog.dedup_summary())
        later = cost.report(aged(bench.store, bench.rules, bench.clock.now), table, spread(month_requests),
                            bench.catalog.dedup_summary(), tagged={c for c, _ in bench.rules.placement().tags})
        print_summary(last, flat, later)
        if args.json:
            Path(args.json).write_text(json.dumps({"months": bench.months, "baseline": flat, "year_later": later},
                                                  indent=1))
        print(f"ran {time.monotonic() - started:.0f} s; load average {os.getloadavg()[0]:.1f}")
        return 0 if last["per_million_images"]["monthly_usd"] <= cost.TARGET_PER_MILLION else 1
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _money(split: dict) -> str:
    return ", ".join(f"{k} ${v:,.2f}" for k, v in split.items() if v >= 0.005)


def print_month(out: dict) -> None:
    pm = out["per_million_images"]
    tiers = {}
    for row in out["storage"]:
        tiers[row["tier"]] = tiers.get(row["tier"], 0) + row["bytes"]
    print(f"month {out['month']}: {out['images']} images, {out['contents']} contents, "
          f"{out['bytes'] / 1e6:,.1f} MB stored ({', '.join(f'{t} {b / 1e6:,.1f} MB' for t, b in tiers.items())}); "
          f"variants {out['variant_bytes'] / 1e6:,.1f} MB of a {out['budget'] / 1e6:,.1f} MB budget; "
          f"{out['reads_total']:,} reads, {out['renders_total']:,.0f} renders so far, "
          f"{out['rerenders_month']:,.0f} re-renders after eviction this month", flush=True)
    scale = 1e6 / max(out["images"], 1)
    print(f"  per million images: ${pm['monthly_usd']:,.2f}/month "
          f"(storage ${out['monthly_usd']['storage'] * scale:,.2f}, "
          f"requests ${out['monthly_usd']['requests'] * scale:,.2f}) vs ${pm['target_usd']:.0f} target", flush=True)
    print(f"  by class: {_money(pm['by_class'])}", flush=True)
    print(f"  by tier:  {_money(pm['by_tier'])}", flush=True)


def print_summary(last: dict, flat: dict, later: dict) -> None:
    ours, base, aged_ = (x["per_million_images"]["monthly_usd"] for x in (last, flat, later))
    d = last["dedup"]
    print(f"dedup: {d['exact_aliases']} exact aliases, {d['collapsed_contents']} near-duplicate contents collapsed, "
          f"{(d['exact_bytes_saved'] + d['perceptual_bytes_saved']) / 1e6:,.1f} MB not stored")
    print(f"month {last['month']} with the lifecycle: ${ours:,.2f} per million images a month; "
          f"baseline (all STANDARD, nothing evicted): ${base:,.2f}; ratio {ours / base:.2f}")
    print(f"a year later (originals in Glacier IR, same reads): ${aged_:,.2f} per million images a month; "
          f"by tier: {_money(later['per_million_images']['by_tier'])}")
    print(f"once per million images: ${last['per_million_images']['one_time_usd']['puts']:,.2f} of PUTs, "
          f"${last['per_million_images']['one_time_usd']['transitions']:,.2f} of transitions")
    verdict = "within" if ours <= cost.TARGET_PER_MILLION else "over"
    print(f"target: ${cost.TARGET_PER_MILLION:.0f} per million images a month: {verdict} "
          f"(1 billion images: ${ours * 1000:,.0f} a month now, ${aged_ * 1000:,.0f} a year on)")


if __name__ == "__main__":
    sys.exit(main())
