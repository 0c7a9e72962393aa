"""Encoder settings at equal SSIM: each setting's bytes at the SSIM the reference setting reaches at the
origin's fixed quality, per photo, interpolated along its own quality curve; on real photos.

    .venv/bin/python loadtest/bench_equal_ssim.py [--format jpeg|webp] [--photos 10] [--widths 300,600,1200]

Each photo is resized in memory to each width; every setting encodes it at qualities 55, 58 ... 94,
SSIM (origin/pipeline/ssim.py) against the unencoded pixels. The reference setting (JPEG effort 0
at q82, WebP effort 4 at q80) fixes each photo's SSIM; a setting's bytes for that photo are
interpolated between its two qualities either side of it. What a setting saves at the same Q
but pays back in SSIM shows here as no saving.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyvips

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtest.bench_quality import photos  # noqa: E402
from origin.pipeline import ssim  # noqa: E402
from origin.pipeline.render import HUGE, JPEG_EFFORT_1  # noqa: E402

QUALITIES = range(55, 97, 3)
TRELLIS = dict(JPEG_EFFORT_1, optimize_scans=False)
SETTINGS = {
    "jpeg": (82, {
        "effort 0 (optimised Huffman)": dict(optimize_coding=True),
        "trellis, table 2 (MS-SSIM)": dict(TRELLIS, quant_table=2),
        "trellis, Annex K table": dict(TRELLIS, quant_table=0),
        "trellis, table 8": dict(TRELLIS, quant_table=8),
        "effort 1 (+ scan search)": JPEG_EFFORT_1,
    }),
    "webp": (80, {
        "effort 4": dict(effort=4),
        "effort 6": dict(effort=6),
        "effort 4, sharp YUV": dict(effort=4, smart_subsample=True),
        "effort 4, photo preset": dict(effort=4, preset="photo"),
        "effort 4, smart deblock": dict(effort=4, smart_deblock=True),
        "picture preset, smart deblock": dict(effort=4, preset="picture", smart_deblock=True),
        "effort 6, smart deblock": dict(effort=6, smart_deblock=True),
        "drawing preset, smart deblock": dict(effort=4, preset="drawing", smart_deblock=True),
        "icon preset, smart deblock": dict(effort=4, preset="icon", smart_deblock=True),
    }),
}


def encode(image: pyvips.Image, fmt: str, options: dict, q: int) -> bytes:
    save = image.jpegsave_buffer if fmt == "jpeg" else image.webpsave_buffer
    return save(Q=q, keep="icc", **options)  # as the origin saves: no EXIF or XMP


def bytes_at(curve: list[tuple[int, float]], target: float) -> float | None:
    points = sorted(curve, key=lambda point: point[1])
    for (b0, s0), (b1, s1) in zip(points, points[1:]):
        if s0 <= target <= s1:
            return b0 + (b1 - b0) * (target - s0) / max(s1 - s0, 1e-12)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=sorted(SETTINGS), default="jpeg")
    parser.add_argument("--photos", type=int, default=10)
    parser.add_argument("--widths", default="300,600,1200")
    args = parser.parse_args()
    pyvips.cache_set_max(0)
    fixed_q, settings = SETTINGS[args.format]
    reference_name = next(iter(settings))
    for width in (int(w) for w in args.widths.split(",")):
        totals, misses = dict.fromkeys(settings, 0.0), dict.fromkeys(settings, 0)
        for path in photos(args.photos):
            image = pyvips.Image.thumbnail(str(path), width, height=HUGE, size="down").copy_memory()
            reference = ssim.luma(image)

            def score(data: bytes) -> float:
                return ssim.ssim(ssim.luma(pyvips.Image.new_from_buffer(data, "")), reference)

            target = score(encode(image, args.format, settings[reference_name], fixed_q))
            for name, options in settings.items():
                curve = [(len(data), score(data)) for data in
                         (encode(image, args.format, options, q) for q in QUALITIES)]
                found = bytes_at(curve, target)
                totals[name] += found if found is not None else float("nan")
                misses[name] += found is None
        print(f"\nw{width}, {args.photos} photos, at the SSIM of {reference_name} q{fixed_q}:")
        for name in settings:
            print(f"  {name:<30} {totals[name] / 1000:8.0f} kB  {totals[name] / totals[reference_name]:6.3f} x"
                  + (f"  ({misses[name]} photos out of range)" if misses[name] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
