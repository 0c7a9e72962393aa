"""Placeholder sizes and what one costs at ingest, on the photos in /usr/share/backgrounds/mate.

    .venv/bin/python loadtest/bench_placeholders.py [--repeat 5]

For each photo: the upright base the eager thumbnails are cut from (origin/ingest/process.py
upright_base, from the 1200-px intermediate as the worker does) is made first and not timed; then
the ThumbHash is made from it (placeholders.of_image: a resize to ≤ 100 px and the encode: what
ingest adds), and the PNG drawn from it (placeholders.png: what an edge miss of
/images/{id}/placeholder costs). Printed: bytes of the hash, of its base64, of the PNG and of the
data: URI, and the median milliseconds of each step.
"""
from __future__ import annotations

import argparse
import base64
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyvips  # noqa: E402

from origin.ingest import process  # noqa: E402
from origin.pipeline import placeholders  # noqa: E402

PHOTOS = sorted(p for p in Path("/usr/share/backgrounds/mate").rglob("*") if p.suffix in (".jpg", ".png"))


def median_ms(work, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'photo':<40} {'size':>11} {'hash':>4} {'b64':>4} {'png':>5} {'uri':>5} {'hash ms':>7} {'png ms':>6}")
    rows = []
    for path in PHOTOS:
        original = pyvips.Image.new_from_file(str(path))
        width, height = original.width, original.height
        intermediate = pyvips.Image.thumbnail(str(path), 1200, height=1200)
        source = intermediate.pngsave_buffer(compression=1) if intermediate.hasalpha() else (
            intermediate.jpegsave_buffer(Q=97, subsample_mode="off"))
        base = process.upright_base(source, width, height, 300)
        made = placeholders.of_image(base)
        png = placeholders.png(made, width, height)
        hash_ms = median_ms(lambda: placeholders.of_image(base), args.repeat)
        png_ms = median_ms(lambda: placeholders.png(made, width, height), args.repeat)
        uri = placeholders.data_uri(made, width, height)
        row = (len(base64.b64decode(made)), len(made), len(png), len(uri), hash_ms, png_ms)
        rows.append(row)
        print(f"{path.name[:40]:<40} {f'{width}x{height}':>11} {row[0]:>4} {row[1]:>4} {row[2]:>5} {row[3]:>5}"
              f" {hash_ms:>7.2f} {png_ms:>6.2f}")
    columns = list(zip(*rows))
    print(f"{'median of ' + str(len(rows)) + ' photos':<40} {'':>11} {statistics.median(columns[0]):>4.0f}"
          f" {statistics.median(columns[1]):>4.0f} {statistics.median(columns[2]):>5.0f}"
          f" {statistics.median(columns[3]):>5.0f} {statistics.median(columns[4]):>7.2f}"
          f" {statistics.median(columns[5]):>6.2f}")


if __name__ == "__main__":
    main()
