"""What the quality search (origin/pipeline/targeting.py) costs at ingest, per photo: the search
the worker runs (samples, encodes, SSIMs), from each photo's 1200-px intermediate, one libvips thread.

    .venv/bin/python loadtest/bench_targeting.py [--photos 16] [--prices ...] [--targets ...] [--efforts jpeg:1,avif:3]

Prints per photo the ms and the encodes the search took and the qualities it chose, then the mean,
median and max, and the same per format (each format's searches alone, in rotated order).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pyvips

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtest.photos import PHOTOS  # noqa: E402
from dataclasses import replace  # noqa: E402

from loadtest.bench_quality import EFFORTS, efforts  # noqa: E402
from origin.config import QUALITY_FLOOR, QUALITY_PRICE, quality_prices, quality_targets  # noqa: E402
from origin.pipeline import targeting  # noqa: E402
from origin.pipeline.render import Encoding, configure_libvips  # noqa: E402


def counted(run):
    """(result, ms, encodes) of `run()`."""
    calls = [0]
    real = targeting.encode

    def counting(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    targeting.encode = counting
    try:
        started = time.perf_counter()
        result = run()
        return result, (time.perf_counter() - started) * 1000, calls[0]
    finally:
        targeting.encode = real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=16)
    parser.add_argument("--prices", default=QUALITY_PRICE)
    parser.add_argument("--targets", default=QUALITY_FLOOR)
    parser.add_argument("--efforts", default=EFFORTS)
    args = parser.parse_args()
    configure_libvips(1)
    targets, prices = quality_targets(args.targets), quality_prices(args.prices)
    encoding = replace(Encoding(), **efforts(args.efforts))
    photos = PHOTOS[: args.photos]
    whole: list[tuple[float, int]] = []
    formats = sorted(set(targets) | set(prices), key=list(targeting.BOUNDS).index)
    by_format: dict[str, list[float]] = {fmt: [] for fmt in formats}
    for i, path in enumerate(photos):
        source = pyvips.Image.thumbnail(str(path), 1200, height=1200).jpegsave_buffer(Q=97, subsample_mode="off")
        chosen, ms, encodes = counted(lambda: targeting.choose(source, targets, encoding, prices))
        whole.append((ms, encodes))
        for fmt in formats[i % len(formats):] + formats[: i % len(formats)]:
            floor, price = ({fmt: each[fmt]} if fmt in each else {} for each in (targets, prices))
            _, fmt_ms, _ = counted(lambda: targeting.choose(source, floor, encoding, price))
            by_format[fmt].append(fmt_ms)
        print(f"{path.name[:32]:32} {ms:7.0f} ms {encodes:3} encodes  {chosen.to_json()}", flush=True)
    ms = [w[0] for w in whole]
    print(f"\n{len(photos)} photos, prices {args.prices or '-'}, floors {args.targets or '-'}, "
          f"efforts {args.efforts or '-'}, one libvips thread")
    print(f"  whole search: mean {statistics.mean(ms):.0f} ms, median {statistics.median(ms):.0f}, max {max(ms):.0f}; "
          f"{statistics.mean(w[1] for w in whole):.1f} encodes per photo")
    for fmt, values in by_format.items():
        print(f"  {fmt:5} alone: mean {statistics.mean(values):.0f} ms, median {statistics.median(values):.0f}")


if __name__ == "__main__":
    main()
