"""AVIF effort sweep: what each heifsave effort costs and saves on a w1200 variant.

    .venv/bin/python loadtest/bench_avif.py [--photo PATH] [--repeat 3] [--max-effort 9]

The source is a 10-12 megapixel photo: the 16 MB Elephants photo thumbnailed
to 4240 px wide (4240x2385 = 10.1 MP for its 16:9 frame; 12 MP for a 4:3 one)
and saved as JPEG q92 in memory. The w1200 image is made from it the way the origin makes it
(render.load), kept in memory, and then only the encode is timed: heifsave with
compression av1, the origin's Q, bitdepth 8, keep icc, at effort 0..9 (median of
`--repeat` runs). WebP and JPEG at the origin's qualities follow for comparison,
and the origin's whole render (load + resize + encode) for its own settings.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyvips  # noqa: E402

from origin.config import Settings  # noqa: E402
from origin.pipeline.render import Encoding, RenderOptions, load, render  # noqa: E402

DEFAULT_PHOTO = Path("/usr/share/backgrounds/mate/abstract/Elephants_5640x3172.jpg")
SOURCE_WIDTH = 4240
WIDTH = 1200


def timed(fn, repeat: int) -> tuple[float, bytes]:
    times, out = [], b""
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def psnr(reference: pyvips.Image, encoded: bytes) -> float:
    """PSNR (dB) of the decoded bytes against the image they were made from: at a fixed Q
    the efforts differ in quality as well as size, so bytes alone do not rank them."""
    decoded = pyvips.Image.new_from_buffer(encoded, "")[:reference.bands]
    diff = reference.cast("float") - decoded.cast("float")
    mse = (diff * diff).avg()
    return float("inf") if mse == 0 else 10 * math.log10(255 ** 2 / mse)


def progress(text: str) -> None:
    if sys.stderr.isatty():
        print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is printed")
    ap.add_argument("--max-effort", type=int, default=9, choices=range(10), metavar="0..9")
    args = ap.parse_args(argv)
    settings = Settings.from_env()
    enc = Encoding.from_settings(settings)

    source = pyvips.Image.thumbnail_buffer(args.photo.read_bytes(), SOURCE_WIDTH, height=10_000_000, size="down")
    jpeg12 = source.jpegsave_buffer(Q=92)
    src = pyvips.Image.new_from_buffer(jpeg12, "")
    options = RenderOptions("w", WIDTH, "avif", src.width, src.height)
    image = load(jpeg12, options).copy_memory()  # the w1200 image, decoded once
    print(f"source: {args.photo.name} -> {src.width}x{src.height} "
          f"({src.width * src.height / 1e6:.1f} MP) JPEG q92, {len(jpeg12) / 1e6:.1f} MB; "
          f"w{WIDTH}: {image.width}x{image.height}; libvips {pyvips.version(0)}.{pyvips.version(1)}."
          f"{pyvips.version(2)}; median of {args.repeat}", flush=True)
    print()

    rows = []
    for effort in range(args.max_effort + 1):
        seconds, out = timed(lambda: image.heifsave_buffer(
            compression="av1", Q=enc.avif_quality, effort=effort, bitdepth=8, keep="icc"), args.repeat)
        rows.append((effort, seconds, len(out), psnr(image, out)))
        progress(f"  effort {effort}: {seconds:.3f} s, {len(out)} bytes")
    base = {e: b for e, _, b, _ in rows}.get(4)

    print(f"AVIF w{WIDTH}, heifsave av1 Q{enc.avif_quality} bitdepth 8 keep icc (origin effort: {enc.avif_effort})")
    print()
    print("| effort | seconds (median of %d) | bytes | bytes vs effort 4 | PSNR dB |" % args.repeat)
    print("|---:|---:|---:|---:|---:|")
    for effort, seconds, size, db in rows:
        versus = f"{size / base - 1:+.1%}" if base else "n/a"
        mark = " (origin)" if effort == enc.avif_effort else ""
        print(f"| {effort}{mark} | {seconds:.3f} | {size:,} | {versus} | {db:.2f} |")

    print()
    print(f"Comparison, the same w{WIDTH} image (encode only), and the origin's whole render")
    print()
    print("| format | settings | encode seconds | bytes | PSNR dB | whole render seconds (load+resize+encode) |")
    print("|---|---|---:|---:|---:|---:|")
    encoders = [
        ("avif", f"Q{enc.avif_quality} effort {enc.avif_effort}", lambda: image.heifsave_buffer(
            compression="av1", Q=enc.avif_quality, effort=enc.avif_effort, bitdepth=8, keep="icc")),
        ("webp", f"Q{enc.webp_quality}", lambda: image.webpsave_buffer(Q=enc.webp_quality, keep="icc")),
        ("jpeg", f"Q{enc.jpeg_quality} optimize_coding",
         lambda: image.jpegsave_buffer(Q=enc.jpeg_quality, optimize_coding=True, keep="icc")),
    ]
    for fmt, label, fn in encoders:
        seconds, out = timed(fn, args.repeat)
        opts = RenderOptions("w", WIDTH, fmt, src.width, src.height)
        whole, _ = timed(lambda: render(jpeg12, opts, enc), args.repeat)
        print(f"| {fmt} | {label} | {seconds:.3f} | {len(out):,} | {psnr(image, out):.2f} | {whole:.3f} |")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
