"""Locust scenario for the edge: browsers loading images from a gallery page.

Driven by loadtest/run_loadtest.py, which writes the manifest named by
IMAGEHOST_LOADTEST_MANIFEST (image ids, variants, Accept mix, Referers, signing
keys) and reads back the report this file writes when the run ends.

    image        Zipf-popular (rank r has weight 1 / r^1.1)
    variant      any allow-listed width (negotiated or .webp/.avif/.jpeg) or thumbnail
    Accept       Chromium, Firefox, Safari 17 (AVIF), Safari 15 (no AVIF), curl, by share
    conditional  ~10 %: If-None-Match with the ETag seen before → 304 expected
    hotlink      ~4 %: a foreign Referer, or no signature → 403 expected
Every other answer must be 200. URLs are signed as the page would embed them.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import sys
import time
from pathlib import Path

from locust import FastHttpUser, events, task

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from origin.security.signing import SigningKeys, sign_path  # noqa: E402

MANIFEST = json.loads(Path(os.environ["IMAGEHOST_LOADTEST_MANIFEST"]).read_text())
IDS = MANIFEST["ids"]
VARIANTS = MANIFEST["variants"]
BROWSERS = [(accept, share) for accept, share in MANIFEST["accepts"].values()]
CUM_ZIPF = list(itertools.accumulate(1 / (rank ** 1.1) for rank in range(1, len(IDS) + 1)))
CUM_ACCEPT = list(itertools.accumulate(share for _, share in BROWSERS))
KEYS = SigningKeys.parse(MANIFEST["signing_keys"])
STARTED = [0.0]
CACHE: dict[str, int] = {}  # X-Cache-Status of image answers after the warm-up


def count_cache_status(resp) -> None:
    if time.monotonic() - STARTED[0] >= MANIFEST["warmup"]:
        status = resp.headers.get("X-Cache-Status") or "none"
        CACHE[status] = CACHE.get(status, 0) + 1


class Browser(FastHttpUser):
    def on_start(self) -> None:
        self.rnd = random.Random()
        self.signed: dict[str, str] = {}
        self.etags: dict[tuple[str, str], str] = {}

    def pick(self) -> tuple[str, str, str]:
        image_id = self.rnd.choices(IDS, cum_weights=CUM_ZIPF)[0]
        variant = self.rnd.choice(VARIANTS)
        accept = self.rnd.choices(BROWSERS, cum_weights=CUM_ACCEPT)[0][0]
        path = f"/images/{image_id}/{variant}"
        if path not in self.signed:
            self.signed[path] = sign_path(KEYS, path, 3600)
        return path, variant, accept

    def fetch(self, url: str, name: str, headers: dict, expected: int):
        with self.client.get(url, name=name, headers=headers, catch_response=True) as resp:
            if resp.status_code != expected:
                resp.failure(f"expected {expected}, got {resp.status_code}")
            else:
                resp.success()
            return resp

    @task(86)
    def image(self) -> None:
        path, variant, accept = self.pick()
        kind = "negotiated" if "." not in variant else "explicit"
        resp = self.fetch(self.signed[path], f"image ({kind})", {"Accept": accept, "Referer": MANIFEST["referer"]},
                          200)
        if resp.status_code == 200:
            count_cache_status(resp)
            self.etags[(path, accept)] = resp.headers.get("ETag", "")

    @task(10)
    def conditional(self) -> None:
        path, variant, accept = self.pick()
        etag = self.etags.get((path, accept))
        if not etag:
            return self.image()
        resp = self.fetch(self.signed[path], "image (If-None-Match)",
                          {"Accept": accept, "Referer": MANIFEST["referer"], "If-None-Match": etag}, 304)
        if resp.status_code == 304:
            count_cache_status(resp)

    @task(4)
    def hotlink(self) -> None:
        path, variant, accept = self.pick()
        if self.rnd.random() < 0.5:
            self.fetch(self.signed[path], "hotlink (foreign Referer)",
                       {"Accept": accept, "Referer": MANIFEST["hotlink"]}, 403)
        else:
            self.fetch(path, "hotlink (unsigned)", {"Accept": accept, "Referer": MANIFEST["referer"]}, 403)


@events.test_start.add_listener
def on_test_start(environment, **kwargs) -> None:
    STARTED[0] = time.monotonic()


@events.quitting.add_listener
def on_quitting(environment, **kwargs) -> None:
    total = environment.stats.total
    hits = CACHE.get("HIT", 0)
    report = {
        "requests": total.num_requests,
        "failures": total.num_failures,
        "error_rate": total.num_failures / total.num_requests if total.num_requests else 0.0,
        "rps": total.total_rps,
        "p50_ms": total.get_response_time_percentile(0.50),
        "p95_ms": total.get_response_time_percentile(0.95),
        "p99_ms": total.get_response_time_percentile(0.99),
        "warmup": MANIFEST["warmup"],
        "cache_statuses": CACHE,
        "hit_ratio": hits / sum(CACHE.values()) if CACHE else 0.0,
        "by_name": {name: [entry.num_requests, entry.num_failures] for (name, _), entry in
                    environment.stats.entries.items()},
        "errors": [f"{e.name}: {e.error} ×{e.occurrences}" for e in environment.stats.errors.values()][:10],
    }
    Path(MANIFEST["report"]).write_text(json.dumps(report))
