"""Reads through the edge from a cold start: hit ratio and latency of hits, store misses and renders.

    .venv/bin/python loadtest/bench_reads.py [--images 240] [--rate 100] [--seconds 240] [--quick]

1. `--images` distinct real photos (loadtest/photos.py) are uploaded through the API into
   `make serve`'s launcher (edge + origin + clamd + the NudeNet model, all defaults): each is
   validated, scanned, moderated and processed (intermediate, eager thumbnails) to `ready`.
2. The launcher is stopped, the edge cache emptied, the launcher started again: a cold start,
   no variant rendered but the eager thumbnails, no worker warmed by a read.
3. Open-loop load (Poisson arrivals at `--rate`, at most `--connections` in flight; latency
   counted from the scheduled start, so a queue shows): Zipf-popular images (1/r^1.1), Zipf
   over the delivery URLs a page uses (negotiated widths and thumbnails), a browser Accept
   mix (Chromium, Firefox, Safari 16 and 17, curl).
4. Each answer is classed by the edge's X-Cache-Status and the origin's Server-Timing: HIT
   (the edge answered), STORE (an edge miss the origin answered from the store), RENDER (an
   edge miss the origin rendered; a fallback answer included).

Targets: p99 of all reads < 100 ms once the rolling hit ratio passes 95 %; renders p99 < 250 ms.
"""
from __future__ import annotations

import argparse
import bisect
import http.client
import itertools
import json
import math
import random
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtest import photos  # noqa: E402
from loadtest.launcher import Launched  # noqa: E402

API_KEY = "bench-reads-key"
ACCEPTS = {  # browser -> (Accept for images, share of the traffic in %)
    "chromium": ("image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", 45),
    "firefox": ("image/avif,image/webp,*/*", 20),
    "safari17": ("image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,"
                 "image/svg+xml,image/*;q=0.8,*/*;q=0.5", 15),
    "safari16": ("image/webp,image/avif,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5", 10),
    "curl": ("*/*", 10),
}
# the URLs a gallery page uses, most requested first (Zipf over this order)
VARIANTS = ("w600", "w300", "sq150", "w1200", "sm150", "w150", "sq300", "sq64", "sm300", "sm64", "w2400")
HIT_STATUSES = {"HIT", "STALE", "UPDATING"}
WINDOW = 1000  # requests in the rolling hit ratio
TARGET_HIT_RATIO = 0.95


def pct(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def upload_all(base: str, paths: list[Path], threads: int = 4) -> list[str]:
    headers = {"Authorization": f"Bearer {API_KEY}"}

    def one(path: Path) -> str:
        target = requests.post(f"{base}/v1/uploads", json={"filename": path.name, "content_type": "image/jpeg"},
                               headers=headers, timeout=30).json()
        resp = requests.put(target["url"], data=path.read_bytes(), headers={"Content-Type": "image/jpeg"}, timeout=120)
        if resp.status_code not in (200, 201, 204):
            raise RuntimeError(f"upload of {path.name}: {resp.status_code} {resp.text[:200]}")
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            state = requests.get(f"{base}/v1/images/{target['id']}", headers=headers, timeout=30).json()["state"]
            if state in ("ready", "held", "quarantined"):
                if state != "ready":
                    raise RuntimeError(f"{path.name} ended {state}")
                return target["id"]
            time.sleep(0.25)
        raise RuntimeError(f"{path.name} never got ready")

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, paths))


class Client(threading.local):
    """One keep-alive connection per load thread."""

    def __init__(self, port: int):
        self.port = port
        self.conn = None

    def get(self, path: str, accept: str):
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.conn.request("GET", path, headers={"Accept": accept})
                resp = self.conn.getresponse()
                body = resp.read()
                return resp.status, resp.getheader("X-Cache-Status") or "", resp.getheader("Server-Timing") or "", \
                    resp.getheader("Content-Type") or "", len(body)
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise


def load(port: int, ids: list[str], rate: float, seconds: float, connections: int, seed: int = 1):
    rnd = random.Random(seed)
    image_weights = list(itertools.accumulate(1 / r ** 1.1 for r in range(1, len(ids) + 1)))
    variant_weights = list(itertools.accumulate(1 / r for r in range(1, len(VARIANTS) + 1)))
    browsers = list(ACCEPTS.values())
    browser_weights = list(itertools.accumulate(share for _, share in browsers))
    count = int(rate * seconds)
    plan, at = [], 0.0
    for _ in range(count):
        at += rnd.expovariate(rate)
        image = ids[bisect.bisect_left(image_weights, rnd.random() * image_weights[-1])]
        variant = VARIANTS[bisect.bisect_left(variant_weights, rnd.random() * variant_weights[-1])]
        accept = browsers[bisect.bisect_left(browser_weights, rnd.random() * browser_weights[-1])][0]
        plan.append((at, f"/images/{image}/{variant}", accept))
    client = Client(port)
    results = [None] * count
    slots = threading.BoundedSemaphore(connections)
    started = time.perf_counter() + 0.2

    def one(i):
        scheduled, path, accept = plan[i]
        try:
            status, cache, timing, ctype, size = client.get(path, accept)
        finally:
            slots.release()
        results[i] = (scheduled, time.perf_counter() - started - scheduled, status, cache, timing, ctype, path)

    with ThreadPoolExecutor(connections) as pool:
        for i, (scheduled, _, _) in enumerate(plan):
            delay = started + scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            slots.acquire()  # at most `connections` in flight; a later start is counted from its schedule
            pool.submit(one, i)
    return [r for r in results if r is not None]


def classify(cache: str, timing: str) -> str:
    if cache in HIT_STATUSES:
        return "HIT"
    return "STORE" if timing.startswith("store") else "RENDER"


def report(results, title: str) -> dict:
    rows = {"HIT": [], "STORE": [], "RENDER": []}
    errors = sum(1 for r in results if r[2] != 200)
    for _, latency, status, cache, timing, _, _ in results:
        rows[classify(cache, timing)].append(latency * 1000)
    total = [x for v in rows.values() for x in v]
    ratio = len(rows["HIT"]) / len(total) if total else float("nan")
    print(f"\n{title}: {len(total)} reads, hit ratio {ratio:.1%}, errors {errors}")
    print(f"  {'class':<8}{'count':>8}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name, values in (*rows.items(), ("all", total)):
        print(f"  {name:<8}{len(values):>8}{pct(values, 50):>10.1f}{pct(values, 99):>10.1f}"
              f"{max(values, default=float('nan')):>10.1f}")
    by_variant: dict[str, list] = {}
    for _, latency, status, cache, timing, ctype, path in results:
        if classify(cache, timing) == "RENDER":
            dur = [float(part.split("dur=")[1]) for part in timing.split(",") if "dur=" in part]
            by_variant.setdefault(path.rsplit("/", 1)[1], []).append((latency * 1000, dur[0] if dur else 0.0))
    if by_variant:
        print("  renders by URL: count, p50/p99 of the read, p50/p99 of the origin's own time (Server-Timing)")
        for name in VARIANTS:
            rows_ = by_variant.get(name)
            if rows_:
                reads, own = [r[0] for r in rows_], [r[1] for r in rows_]
                print(f"    {name:<7}{len(rows_):>6}{pct(reads, 50):>9.0f}{pct(reads, 99):>8.0f}"
                      f"{pct(own, 50):>9.0f}{pct(own, 99):>8.0f}")
    return {"reads": len(total), "hit_ratio": ratio, "errors": errors,
            **{f"{k.lower()}_p99": pct(v, 99) for k, v in (*rows.items(), ("all", total))},
            **{f"{k.lower()}_p50": pct(v, 50) for k, v in (*rows.items(), ("all", total))}}


def past_target(results) -> int:
    """The index from which the rolling hit ratio over WINDOW reads stays at or over the target."""
    hits = [classify(r[3], r[4]) == "HIT" for r in results]
    window = sum(hits[:WINDOW])
    for i in range(WINDOW, len(hits)):
        if window >= TARGET_HIT_RATIO * WINDOW:
            return i
        window += hits[i] - hits[i - WINDOW]
    return len(hits)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second (open loop)")
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--connections", type=int, default=64, help="in flight at most (a CDN has more)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "imagehost-bench-photos")
    parser.add_argument("--keep", type=Path, help="keep the data dir here (default: a temporary one)")
    parser.add_argument("--quick", action="store_true", help="30 images, 40 s: checks the script, not the target")
    args = parser.parse_args()
    if args.quick:
        args.images, args.seconds, args.rate = 30, 40.0, 60.0
    paths = photos.distinct(args.images, args.cache)
    tmp = Path(tempfile.mkdtemp(prefix="bench-reads-"))
    data = args.keep or tmp / "var"
    env = {"IMAGEHOST_API_KEYS": f"{API_KEY}:bench"}
    try:
        started = time.monotonic()
        with Launched(data, env) as stack:
            ids = upload_all(stack.url, paths)
        print(f"uploaded {len(ids)} distinct photos through the whole pipeline in {time.monotonic() - started:.0f} s")
        shutil.rmtree(data / "edge" / "cache", ignore_errors=True)
        with Launched(data, env) as stack:
            results = load(stack.port, ids, args.rate, args.seconds, args.connections)
            metrics = requests.get(stack.url + "/metrics", timeout=10).text
        renders = sum(float(line.split()[-1]) for line in metrics.splitlines()
                      if line.startswith("imagehost_renders_total"))
        print(f"\ncold start: {len(ids)} images, {args.rate:.0f} req/s open loop for {args.seconds:.0f} s, "
              f"<= {args.connections} in flight; origin renders: {renders:.0f}")
        whole = report(results, "all reads")
        cut = past_target(results)
        steady = report(results[cut:], f"reads after the rolling hit ratio ({WINDOW}) passed "
                                       f"{TARGET_HIT_RATIO:.0%} (from read {cut})") if cut < len(results) else None
        verdicts = []
        if steady:
            verdicts.append(("p99 of all reads once the hit ratio passes 95 %", steady["all_p99"], 100))
        verdicts.append(("p99 of renders (whole run)", whole["render_p99"], 250))
        print()
        for name, value, limit in verdicts:
            print(f"  {name}: {value:.1f} ms (target < {limit} ms) {'PASS' if value < limit else 'MISS'}")
        print(json.dumps({"whole": whole, "steady": steady}))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
