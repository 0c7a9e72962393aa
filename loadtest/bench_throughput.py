"""Uncached render throughput, side by side in one run: the origin through its edge, the raw pyvips loop,
thumbor and ipx, on the same photos and sizes, interleaved round by round.

    .venv/bin/python loadtest/bench_throughput.py [--rounds 5] [--set phone] [--quick]

Work: each photo of the set at w150, w300, w600 and w1200 (width-bound, like /w{width}), as
WebP q80 and JPEG q82 (effort 4, metadata stripped, ICC kept) = 8 renders per photo per round.

    raw             the limit without render sources: thumbnail_buffer from the original's bytes
                    in memory, then the encoder, in 2 threads (one per core), in this process
    origin          `make serve`'s launcher (nginx edge + gunicorn, one worker per core) with
                    IMAGEHOST_INTERMEDIATE_SIZES=0: every render reads the original
    origin+sources  the same launcher with the default render sources: the intermediate made
                    at ingest (`imagehost ingest`, before the timed window)
    thumbor         pip's thumbor, one process per core, file loader, no (result) storage
    ipx             npm's ipx (Node + sharp), one process per core, file storage

The origin's variants are stored once rendered, so each round ingests every photo again as
new content (the bytes differ by a JPEG comment: same pixels, another SHA-256) and asks for
URLs no edge or store has seen. Clients: 2 connections per core. Each round runs every
system once, in a rotated order; ratios are taken per round (the same minute of the
machine's drift) and their median reported. Every answer's dimensions are checked.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyvips
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtest import photos  # noqa: E402
from loadtest.launcher import Launched  # noqa: E402
from loadtest.peers import Ipx, Thumbor  # noqa: E402
from origin.pipeline.render import Encoding, RenderOptions, render  # noqa: E402

WIDTHS = (150, 300, 600, 1200)
FORMATS = ("webp", "jpeg")
CORES = os.cpu_count() or 2
CONNECTIONS = 2 * CORES
ENCODING = Encoding(jpeg_quality=82, webp_quality=80, webp_effort=4)
# IMAGEHOST_DEDUP_PERCEPTUAL=0: each round's copies have the same pixels (another SHA-256 only), and
# `imagehost ingest` would otherwise collapse them into the first round's content, variants and all
DELIVERY_ONLY = {"IMAGEHOST_WORKER_THREADS": "0", "IMAGEHOST_SCAN": "0", "IMAGEHOST_MODERATION": "off",
                 "IMAGEHOST_DEDUP_PERCEPTUAL": "0",
                 "IMAGEHOST_WEBP_EFFORT": "4", "IMAGEHOST_JPEG_QUALITY": "82", "IMAGEHOST_WEBP_QUALITY": "80"}


def phone_photos(count: int, cache: Path) -> list[Path]:
    """`count` distinct 12 MP (4000 x 3000) JPEGs, q90 4:2:0 like a phone's: 4:3 crops of the real photos
    at least that large, mirrored for more."""
    big = [p for p in photos.PHOTOS if _size(p)[0] >= 4000 and _size(p)[1] >= 3000]
    out = []
    cache.mkdir(parents=True, exist_ok=True)
    for mirrored in (False, True):
        for photo in big:
            image = pyvips.Image.new_from_file(str(photo)).autorot()
            for left in sorted({0, image.width - 4000}):
                if len(out) == count:
                    return out
                path = cache / f"phone-{photo.stem}-{left}-{int(mirrored)}.jpg"
                if not path.exists():
                    crop = image.crop(left, (image.height - 3000) // 2, 4000, 3000)
                    path.write_bytes((crop.fliphor() if mirrored else crop).jpegsave_buffer(Q=90, keep="icc"))
                out.append(path)
    return out


def _size(path: Path) -> tuple[int, int]:
    image = pyvips.Image.new_from_file(str(path))
    return (image.height, image.width) if image.get_typeof("orientation") and image.get("orientation") >= 5 \
        else (image.width, image.height)


def expected_size(path: Path, width: int) -> tuple[int, int]:
    w, h = _size(path)
    width = min(width, w)
    return width, int(h * width / w + 0.5)


def jobs(paths: list[Path]) -> list[tuple[Path, int, str]]:
    return [(p, w, f) for p in paths for w in WIDTHS for f in FORMATS]


def timed(work: list, fetch, threads: int) -> tuple[float, list[str]]:
    """Run fetch(i, job) -> bytes over `work` in `threads` threads; (seconds, dimension errors)."""
    errors: list[str] = []
    lock = threading.Lock()

    def one(item):
        i, job = item
        data = fetch(i, job)
        head = pyvips.Image.new_from_buffer(data, "")
        want = expected_size(job[0], job[1])
        if head.width != want[0] or abs(head.height - want[1]) > 1:  # thumbor rounds 112.5 down
            with lock:
                errors.append(f"{job[0].name} w{job[1]}.{job[2]}: {head.width}x{head.height}, expected {want}")

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, enumerate(work)))
    return time.perf_counter() - started, errors


def http_fetcher():
    local = threading.local()

    def get(url: str) -> bytes:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        resp = session.get(url, timeout=300)
        if resp.status_code != 200:
            raise RuntimeError(f"{url}: {resp.status_code} {resp.text[:200]}")
        return resp.content
    return get


def with_comment(data: bytes, tag: str) -> bytes:
    """The same JPEG with a COM segment after SOI: the same pixels, another SHA-256."""
    payload = tag.encode()
    return data[:2] + b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload + data[2:]


def ingest_round(stack: Launched, paths: list[Path], tag: str, scratch: Path) -> dict[Path, str]:
    """Every photo as new content in `stack`'s store (`imagehost ingest`, the trusted import)."""
    files = []
    for path in paths:
        copy = scratch / f"{tag}-{path.name}"
        copy.write_bytes(with_comment(path.read_bytes(), tag))
        files.append(copy)
    result = subprocess.run([sys.executable, "-m", "origin.cli", "ingest", *map(str, files)], env=stack.env, cwd=ROOT,
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    ids = [json.loads(line)["id"] for line in result.stdout.splitlines()]
    for copy in files:
        copy.unlink()
    return dict(zip(paths, ids))


def profile(stack: Launched, work: list, ids: dict, get, seconds: float) -> None:
    """py-spy (a scratch install) on the origin's gunicorn workers while they render `work` once, on new
    content (`seconds` should cover it): where a request's time goes, by the frames its samples are in."""
    from collections import Counter

    from loadtest.peers import SCRATCH, _run

    spy = SCRATCH / "imagehost-pyspy" / "bin" / "py-spy"
    if not spy.exists():
        _run(["python3", "-m", "venv", str(spy.parent.parent)], SCRATCH)
        _run([str(spy.parent / "pip"), "install", "--quiet", "py-spy"], SCRATCH)
    outs, procs = [], []
    for pid in stack.worker_pids():
        out = SCRATCH / f"imagehost-pyspy-{pid}.txt"
        outs.append(out)
        procs.append(subprocess.Popen([str(spy), "record", "--pid", str(pid), "--duration", str(int(seconds)),
                                       "--rate", "200", "--format", "raw", "--idle", "--threads", "--output", str(out)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)
    timed(work, lambda i, job: get(f"{stack.url}/images/{ids[job[0]]}/w{job[1]}.{job[2]}"), CONNECTIONS)
    for proc in procs:
        proc.wait(60)
    buckets, leaves, total = Counter(), Counter(), 0
    for out in outs:
        for line in out.read_text().splitlines() if out.exists() else []:
            stack_text, _, count = line.rpartition(" ")
            frames = stack_text.split(";")
            n = int(count)
            if not any("ThreadWorker.handle" in f for f in frames):
                continue  # idle threads, the arbiter, background threads: no request being answered
            total += n
            names = " ".join(frames)
            if "_render_and_store" not in names:
                buckets["not rendering (HTTP, store lookup, waiting)"] += n
            elif any(k in names for k in ("load (", "load_intermediate")):
                buckets["render: load + resize (libvips)"] += n
            elif "encode (" in names:
                buckets["render: encode (libvips)"] += n
            elif "_put" in names or "put (" in names:
                buckets["render: store write (fsync)"] += n
            else:
                buckets["render: other"] += n
            leaves[frames[-1].split(" (")[0]] += n
    print(f"\npy-spy on the origin's workers, {seconds:.0f} s, {total} samples in request threads")
    for name, n in buckets.most_common():
        print(f"  {name:<48}{n / max(total, 1):7.1%}")
    print("  top leaf frames: " + ", ".join(f"{name} {n / max(total, 1):.0%}" for name, n in leaves.most_common(6)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--photos", type=int, default=12)
    parser.add_argument("--systems", default="raw,origin,origin+sources,thumbor,ipx")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "imagehost-bench-photos")
    parser.add_argument("--quick", action="store_true", help="2 photos, 2 rounds: checks the script")
    parser.add_argument("--profile", type=float, default=0, help="then py-spy the origin's workers for N s")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.photos = 2, 2
    systems = args.systems.split(",")
    paths = phone_photos(args.photos, args.cache / "phone")
    photo_dir = paths[0].parent
    work = jobs(paths)
    pyvips.cache_set_max(0)
    sources = {p: p.read_bytes() for p in paths}
    scratch = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    get = http_fetcher()
    running: dict[str, object] = {}
    rates: dict[str, list[float]] = {name: [] for name in systems}
    errors: list[str] = []
    try:
        if "origin" in systems:
            running["origin"] = Launched(scratch / "originals", {**DELIVERY_ONLY, "IMAGEHOST_INTERMEDIATE_SIZES": "0"})
        if "origin+sources" in systems:
            running["origin+sources"] = Launched(scratch / "sources", DELIVERY_ONLY)
        for stack in running.values():
            stack.__enter__()
        if "thumbor" in systems:
            running["thumbor"] = Thumbor(photo_dir, CORES, 80, 82).start()
        if "ipx" in systems:
            running["ipx"] = Ipx(photo_dir, CORES, 80, 82).start()
        print(f"{len(paths)} photos (12 MP, {sum(len(b) for b in sources.values()) / len(paths) / 1e6:.1f} MB "
              f"on average), {len(work)} renders per system per round, {CONNECTIONS} connections", flush=True)
        for rnd in range(args.rounds):
            ids = {name: ingest_round(running[name], paths, f"r{rnd}-{name}", scratch)
                   for name in ("origin", "origin+sources") if name in running}
            order = systems[rnd % len(systems):] + systems[:rnd % len(systems)]
            line = []
            for name in order:
                if name == "raw":
                    def fetch(i, job):
                        path, width, fmt = job
                        return render(sources[path], RenderOptions("w", width, fmt, *_size(path)), ENCODING)
                    seconds, bad = timed(work, fetch, CONNECTIONS)  # the clients' concurrency: fair under load
                elif name.startswith("origin"):
                    stack, mine = running[name], ids[name]
                    seconds, bad = timed(work, lambda i, job: get(
                        f"{stack.url}/images/{mine[job[0]]}/w{job[1]}.{job[2]}"), CONNECTIONS)
                else:
                    peer = running[name]
                    seconds, bad = timed(work, lambda i, job: get(peer.url(i, job[0].name, job[1], job[2])),
                                         CONNECTIONS)
                errors += [f"{name}: {e}" for e in bad]
                rates[name].append(len(work) / seconds)
                line.append(f"{name} {len(work) / seconds:.2f}")
            print(f"round {rnd + 1}: " + ", ".join(line) + " img/s", flush=True)
        if args.profile and "origin" in running:
            profile(running["origin"], work, ingest_round(running["origin"], paths, "profile", scratch), get,
                    args.profile)
    finally:
        for thing in running.values():
            if isinstance(thing, Launched):
                thing.__exit__()
            else:
                thing.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\nuncached renders, img/s over {args.rounds} rounds (median, min-max)")
    for name in systems:
        values = rates[name]
        print(f"  {name:<16}{statistics.median(values):8.2f}   {min(values):.2f}-{max(values):.2f}")
    print("\nratios, per round, median (min-max)")
    pairs = [("origin", "raw", 0.9), ("origin+sources", "raw", 1.5), ("origin+sources", "thumbor", 2.0),
             ("origin+sources", "ipx", 2.0), ("origin", "thumbor", None), ("origin", "ipx", None)]
    for a, b, target in pairs:
        if a in rates and b in rates:
            ratios = [x / y for x, y in zip(rates[a], rates[b])]
            verdict = "" if target is None else f"   target >= {target}: {'PASS' if statistics.median(ratios) >= target else 'MISS'}"
            print(f"  {a} / {b}: {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}){verdict}")
    if errors:
        print(f"\n{len(errors)} answers had other dimensions than asked:", *errors[:10], sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
