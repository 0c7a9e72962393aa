"""Ingest through the whole pipeline: upload-to-ready time, sustained uploads per second, and the limit.

Starts the origin on the embedded defaults with its in-process workers, real clamd
(the project's signatures, warmed by one scan first) and the real default moderation model (open_nsfw).

    latency      a 12 MP JPEG, a 12 MP HEVC HEIC and a 12 MP JPEG XL uploaded one at a time, `--runs` each:
                 the time from the start of the upload to `ready` (validation, scan,
                 moderation, metadata, hashes, intermediates, the twelve eager thumbnails)
    throughput   `--burst` distinct uploads of each kind sent 4 at a time: uploads per
                 second from the first byte sent to the last image `ready`
    limit        the same stages run one after the other in this process on one upload
                 (loadtest/ingest_stages.py, the pipeline's own functions): their CPU sum
                 per upload, and cores / sum, the most the machine can do

    .venv/bin/python loadtest/bench_ingest.py [--runs 5] [--burst 12]

Targets on the 2-core machine: upload-to-ready under 2 s; throughput >= 0.8 x the limit.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyvips

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from origin.config import Settings  # noqa: E402
from origin.services.clamd import ensure_clamd, stop_clamd  # noqa: E402
from tests.images import BIG_PHOTO  # noqa: E402
from tests.servers import start_origin, stop  # noqa: E402
from tests.uploads import KEYS_ENV, upload, wait_state  # noqa: E402

TARGET_SECONDS = 2.0
TARGET_RATIO = 0.8
CORES = os.cpu_count() or 2
SEED_RATE = 500  # uploads per second the seed asks of the fleet


def twelve_megapixels(count: int) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """`count` distinct JPEGs, HEICs and JPEG XLs (libjxl effort 3) of the same 12 MP photo (other
    qualities, other bytes), so every upload is new content: dedup would otherwise skip the work
    being measured."""
    import pillow_heif
    from PIL import Image

    from origin.pipeline import jxl

    photo = pyvips.Image.thumbnail(str(BIG_PHOTO), 4620).copy_memory()  # 4620 × 2598 ≈ 12.0 MP
    jpegs = [photo.jpegsave_buffer(Q=90 - i) for i in range(count)]
    heics = []
    for i, jpeg in enumerate(jpegs):
        out = io.BytesIO()
        pillow_heif.from_pillow(Image.open(io.BytesIO(jpeg))).save(out, format="HEIF", quality=80 - i)
        heics.append(out.getvalue())
    jxls = [jxl.encode(photo, 90 - i, effort=3) for i in range(count)]
    return jpegs, heics, jxls


def measure(base: str, blobs: list[bytes], name: str) -> list[float]:
    times = []
    for data in blobs:
        started = time.perf_counter()
        target = upload(base, data, filename=name)
        info = wait_state(base, target["id"], timeout=120)
        elapsed = time.perf_counter() - started
        if info["state"] != "ready":
            raise SystemExit(f"{name} ended {info['state']}: {info}")
        times.append(elapsed)
    return times


def sustained(base: str, blobs: list[bytes], name: str, senders: int = 4) -> float:
    """Uploads per second: all of `blobs`, `senders` at a time, until the last is ready."""
    from concurrent.futures import ThreadPoolExecutor

    started = time.perf_counter()
    with ThreadPoolExecutor(senders) as pool:
        targets = list(pool.map(lambda data: upload(base, data, filename=name), blobs))
        infos = list(pool.map(lambda t: wait_state(base, t["id"], timeout=600), targets))
    elapsed = time.perf_counter() - started
    bad = [i["state"] for i in infos if i["state"] != "ready"]
    if bad:
        raise SystemExit(f"{name}: {len(bad)} ended {bad[0]}")
    return len(blobs) / elapsed


def limits(samples: dict[str, bytes], sock: str, tmp: str, repeat: int = 3) -> dict:
    """{kind: {stage: median CPU seconds}} for one upload of each kind, in this process."""
    from loadtest.ingest_stages import stage_costs
    from origin.ports.scanner_clamd import ClamdScanner
    from origin.ports.store_local import LocalStore
    from origin.wiring import open_moderator

    settings = Settings(data_dir=Path(tmp) / "stages")
    scanner, moderator = ClamdScanner(sock), open_moderator(settings.moderation).load()  # the default model
    store = LocalStore(settings.store_dir)
    out = {}
    for kind, data in samples.items():
        runs = [stage_costs(data, settings, scanner, moderator, store, sock) for _ in range(repeat)]
        out[kind] = {stage: statistics.median(r[stage] for r in runs) for stage in runs[0]}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--burst", type=int, default=12)
    args = parser.parse_args()
    jpegs, heics, jxls = twelve_megapixels(args.runs + args.burst + 1)
    kinds = {"12 MP JPEG": (jpegs, "photo.jpg"), "12 MP HEVC HEIC": (heics, "photo.heic"),
             "12 MP JPEG XL": (jxls, "photo.jxl")}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        clamd = Settings(data_dir=Path(tmp) / "clamd")
        sock = ensure_clamd(clamd)
        env = {**KEYS_ENV, "IMAGEHOST_CLAMD_SOCKET": sock, "IMAGEHOST_MODERATION": "open_nsfw",
               "IMAGEHOST_DEDUP_PERCEPTUAL": "0"}  # the same photo each time: measure the work, not a link
        server = None
        try:
            server = start_origin(Path(tmp) / "var", env)
            measure(server.url, jpegs[-1:], "warm-up.jpg")  # loads the model, warms clamd
            runs, burst = slice(0, args.runs), slice(args.runs, args.runs + args.burst)
            rows = [(kind, len(blobs[0]), measure(server.url, blobs[runs], name))
                    for kind, (blobs, name) in kinds.items()]
            rates = {kind: sustained(server.url, blobs[burst], "burst-" + name) for kind, (blobs, name) in kinds.items()}
            stop(server.proc)
            server = None
            stages = limits({kind: blobs[-1] for kind, (blobs, _) in kinds.items()}, sock, tmp)
        finally:
            if server is not None:
                stop(server.proc)
            stop_clamd(clamd)
    print(f"\nupload-to-ready, {args.runs} runs each (validate, clamd scan, open_nsfw, metadata, hashes, 12 thumbnails)")
    print(f"{'input':<18}{'bytes':>12}{'p50 s':>9}{'max s':>9}   target < {TARGET_SECONDS:.1f} s")
    for name, size, times in rows:
        p50 = statistics.median(times)
        verdict = "PASS" if p50 < TARGET_SECONDS else "MISS"
        print(f"{name:<18}{size:>12,}{p50:>9.2f}{max(times):>9.2f}   {verdict}")
    kinds = list(stages)
    print("\nstage costs, CPU ms per upload on one core (median of 3, this process, the pipeline's functions)")
    names = list(dict.fromkeys(n for k in kinds for n in stages[k] if not n.startswith("_")))
    print(f"  {'stage':<58}" + "".join(f"{k:>18}" for k in kinds))
    for stage in names:
        print(f"  {stage:<58}" + "".join(
            f"{stages[k][stage] * 1000:>18.1f}" if stage in stages[k] else f"{'-':>18}" for k in kinds))
    print(f"\nsustained throughput, {args.burst} distinct uploads 4 at a time, against the limit ({CORES} cores / sum)")
    for kind in kinds:
        total = sum(v for n, v in stages[kind].items() if not n.startswith("_"))
        limit = CORES / total
        ratio = rates[kind] / limit
        print(f"  {kind:<18} sum {total * 1000:7.0f} ms   limit {limit:5.2f}/s   measured {rates[kind]:5.2f}/s   "
              f"ratio {ratio:.2f} (target >= {TARGET_RATIO}) {'PASS' if ratio >= TARGET_RATIO else 'MISS'}   "
              f"{SEED_RATE}/s needs {SEED_RATE * total:.0f} cores at the limit, "
              f"{SEED_RATE / rates[kind] * CORES:.0f} at the measured rate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
