"""Encoder settings by measurement: time per megapixel, bytes and SSIM for JPEG, PNG, and WebP and AVIF
at each effort, at the origin's qualities (JPEG q82, WebP q80, AVIF q55), on real photos.

    .venv/bin/python loadtest/bench_encoders.py [--repeat 3] [--formats jpeg,png,webp,avif] [--quick]

Each photo is resized in memory to w1200 and w2400 (the encode alone is timed, median of
`--repeat`); SSIM against the unencoded pixels (tests/quality.py). The ms-per-megapixel
column is what origin/pipeline/deferral.py's COST_MS_PER_MP predicts a miss's encode with.
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

from loadtest.photos import BACKGROUNDS  # noqa: E402
from origin.pipeline.render import Encoding, RenderOptions, encode  # noqa: E402
from tests import quality  # noqa: E402

PHOTOS = [BACKGROUNDS / "mate" / "abstract" / "Elephants_5640x3172.jpg", BACKGROUNDS / "Dragonfly_by_Bolly.jpg",
          BACKGROUNDS / "sunset_by_Aitzol_Berasategi.jpg", BACKGROUNDS / "mate" / "nature" / "Garden.jpg"]
SETTINGS = [("jpeg", 0), ("jpeg", 1), ("png", None)] + [("webp", e) for e in range(7)] + [("avif", e) for e in range(10)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--widths", default="1200,2400")
    parser.add_argument("--max-avif-effort", type=int, default=8, help="9 takes ~30 s per megapixel")
    parser.add_argument("--formats", default="jpeg,png,webp,avif")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    photos = [p for p in PHOTOS if p.exists()]
    if args.quick:
        photos, widths, args.repeat, args.max_avif_effort = photos[:1], [1200], 1, 2
    pyvips.cache_set_max(0)
    pictures = [pyvips.Image.thumbnail(str(p), w).copy_memory() for p in photos for w in widths]
    rows = {}
    for fmt, effort in SETTINGS:
        if fmt not in args.formats.split(",") or fmt == "avif" and effort > args.max_avif_effort:
            continue
        enc = Encoding(webp_effort=effort if fmt == "webp" else 4, avif_effort=effort if fmt == "avif" else 2,
                       jpeg_effort=effort if fmt == "jpeg" else 0)
        ms_per_mp, sizes, scores = [], [], []
        for picture in pictures:
            opts = RenderOptions("w", picture.width, fmt, picture.width, picture.height)
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                data = encode(picture, opts, enc)
                times.append(time.perf_counter() - started)
            ms_per_mp.append(statistics.median(times) * 1000 / (picture.width * picture.height / 1e6))
            sizes.append(len(data))
            scores.append(quality.score(data, picture))
        rows[(fmt, effort)] = (statistics.median(ms_per_mp), sum(sizes) / len(sizes), statistics.mean(scores))
        print(f"  {fmt:<5} effort {'-' if effort is None else effort:<3} {rows[(fmt, effort)][0]:8.1f} ms/MP "
              f"{rows[(fmt, effort)][1] / 1000:9.1f} kB  SSIM {rows[(fmt, effort)][2]:.4f}", flush=True)
    print(f"\n{len(photos)} photos x widths {widths}, median of {args.repeat}; bytes and SSIM are means")
    print(f"{'format':<7}{'effort':>7}{'ms/MP':>9}{'kB':>9}{'vs default':>12}{'SSIM':>8}")
    defaults = {"jpeg": ("jpeg", 0), "webp": ("webp", 4), "avif": ("avif", 2)}
    for (fmt, effort), (ms, size, score) in rows.items():
        base = rows.get(defaults.get(fmt, (fmt, effort)), (ms, size, score))
        print(f"{fmt:<7}{'-' if effort is None else effort:>7}{ms:>9.1f}{size / 1000:>9.1f}"
              f"{(size / base[1] - 1) * 100:>11.1f}%{score:>8.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
