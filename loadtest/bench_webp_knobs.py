"""libwebp's knobs that libvips does not reach, at equal SSIM, through cwebp: the encoder's spatial
noise shaping, filter sharpness, segments, method 5, the simple filter, and sharpening or softening
the pixels before the encode; on real photos.

    apt-get install webp    # cwebp (BSD-3-Clause); a measuring tool, not a dependency of the host
    .venv/bin/python loadtest/bench_webp_knobs.py [--photos 12] [--width 600]

Each photo is resized in memory to the width (libvips' thumbnail) and written losslessly; every
setting encodes it at qualities 56, 60 ... 96, SSIM (origin/pipeline/ssim.py) against the unencoded
pixels. cwebp at q80, method 4 (the origin's fixed WebP) fixes each photo's SSIM; a setting's bytes
for that photo are interpolated between its two qualities either side of it, and the table gives
each setting's bytes against method 4's at that SSIM. The autofilter is libvips' smart_deblock
(IMAGEHOST_WEBP_DEBLOCK): the others are measured with it on.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyvips

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtest.bench_equal_ssim import bytes_at  # noqa: E402
from loadtest.bench_quality import photos  # noqa: E402
from origin.pipeline import ssim  # noqa: E402
from origin.pipeline.render import HUGE  # noqa: E402

QUALITIES = range(56, 97, 4)
REFERENCE = "method 4"
# name -> (an unsharp mask on the pixels before the encode, as (sigma, amount), or None; cwebp's options).
# A negative amount blends the blur in: a softening that leaves the encoder less detail to spend bytes on.
SETTINGS = {
    REFERENCE: (None, "-m 4"),
    "autofilter": (None, "-m 4 -af"),
    "autofilter, sns 0": (None, "-m 4 -af -sns 0"),
    "autofilter, sns 25": (None, "-m 4 -af -sns 25"),
    "autofilter, sharpness 3": (None, "-m 4 -af -sharpness 3"),
    "autofilter, sharpness 6": (None, "-m 4 -af -sharpness 6"),
    "autofilter, 2 segments": (None, "-m 4 -af -segments 2"),
    "autofilter, method 5": (None, "-m 5 -af"),
    "autofilter, simple filter": (None, "-m 4 -af -nostrong"),
    "autofilter, unsharp 0.7 x 0.15": ((0.7, 0.15), "-m 4 -af"),
    "autofilter, unsharp 0.7 x 0.3": ((0.7, 0.3), "-m 4 -af"),
    "autofilter, unsharp 1.2 x 0.2": ((1.2, 0.2), "-m 4 -af"),
    "autofilter, soften 0.6 x 0.2": ((0.6, -0.2), "-m 4 -af"),
    "autofilter, soften 1.0 x 0.2": ((1.0, -0.2), "-m 4 -af"),
}


def prefilter(image: pyvips.Image, how: tuple[float, float]) -> pyvips.Image:
    sigma, amount = how
    blurred = image.gaussblur(sigma, precision="float")
    pixels = image.cast("float")
    return (pixels + (pixels - blurred) * amount).cast("uchar")  # cast clips to 0-255


def curve(png: str, reference, options: str) -> list[tuple[int, float]]:
    out = []
    for q in QUALITIES:
        webp = f"{png}.{q}.webp"
        subprocess.run(["cwebp", "-quiet", "-q", str(q), *options.split(), png, "-o", webp], check=True)
        out.append((os.path.getsize(webp), ssim.ssim(ssim.luma(pyvips.Image.new_from_file(webp)), reference)))
        os.unlink(webp)
    return out


def one(folder: str, n: int, path: Path, width: int) -> dict[str, float]:
    image = pyvips.Image.thumbnail(str(path), width, height=HUGE, size="down").copy_memory()
    if image.hasalpha():
        image = image.flatten()
    reference = ssim.luma(image)
    out: dict[str, float] = {}
    plain, fixed = _png(image, f"{folder}/{n}.png"), f"{folder}/{n}-fixed.webp"  # the unfiltered pixels, written once
    subprocess.run(["cwebp", "-quiet", "-q", "80", "-m", "4", plain, "-o", fixed], check=True)
    target = ssim.ssim(ssim.luma(pyvips.Image.new_from_file(fixed)), reference)
    for name, (how, options) in SETTINGS.items():
        png = plain if how is None else _png(prefilter(image, how), f"{folder}/{n}-{len(out)}.png")
        out[name] = bytes_at(curve(png, reference, options), target) or float("nan")
    return out


def _png(image: pyvips.Image, path: str) -> str:
    image.pngsave(path, compression=1)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=12)
    parser.add_argument("--width", type=int, default=600)
    args = parser.parse_args()
    if not shutil.which("cwebp"):
        raise SystemExit("cwebp not found: apt-get install webp")
    version = subprocess.run(["cwebp", "-version"], capture_output=True, text=True).stdout.strip()
    pyvips.cache_set_max(0)
    totals = dict.fromkeys(SETTINGS, 0.0)
    best = 0.0  # each photo's best setting, known after trying every one: what a per-picture choice could at most take
    with tempfile.TemporaryDirectory() as folder, ThreadPoolExecutor(2) as pool:
        results = pool.map(lambda item: one(folder, item[0], item[1], args.width), enumerate(photos(args.photos)))
        for result in results:
            for name, found in result.items():
                totals[name] += found
            best += min(result.values())
    print(f"w{args.width}, {args.photos} photos, cwebp {version}, at the SSIM of cwebp q80 {REFERENCE}:")
    for name in SETTINGS:
        print(f"  {name:<34} {totals[name] / 1000:8.1f} kB  {totals[name] / totals[REFERENCE]:6.3f} x")
    print(f"  {'each photo its best of these':<34} {best / 1000:8.1f} kB  {best / totals[REFERENCE]:6.3f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
