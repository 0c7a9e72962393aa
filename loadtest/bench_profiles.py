"""Bytes an embedded sRGB profile costs every variant, on the real photos that carry one.

    .venv/bin/python loadtest/bench_profiles.py [--photos 48] [--widths 150,300,600,1200]

Of the benchmark photos (loadtest/bench_quality.py's), those whose file embeds an ICC profile are
rendered at each width and format twice, through the serving path: with the profile kept (what a
render did before origin/pipeline/profiles.py) and as served now. The pixels are the same; the
bytes differ by the profile. Also the once-per-profile cost of the check.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pyvips

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtest.bench_quality import WALLPAPERS, photos  # noqa: E402
from origin.config import Settings  # noqa: E402
from origin.pipeline import profiles  # noqa: E402
from origin.pipeline.render import Encoding, RenderOptions, encode, load, render  # noqa: E402

FORMATS = ("jpeg", "webp", "avif")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=48)
    parser.add_argument("--widths", default="150,300,600,1200")
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    pyvips.cache_set_max(0)
    encoding = Encoding.from_settings(Settings())
    corpus = photos(args.photos)
    tagged = []
    for path in corpus:
        image = pyvips.Image.new_from_file(str(path))
        if image.get_typeof("icc-profile-data"):
            tagged.append((path, image.width, image.height, image.get("icc-profile-data")))
    print(f"{len(tagged)} of {len(corpus)} photos embed a profile")
    totals = {(w, fmt): [0, 0] for w in widths for fmt in FORMATS}
    for path, width, height, profile in tagged:
        started = time.perf_counter()
        srgb = profiles.describes_srgb(profile)
        check_ms = (time.perf_counter() - started) * 1000
        name = path.parts[-4] if path.is_relative_to(WALLPAPERS) else path.stem
        print(f"\n{name}: {len(profile)}-byte profile, describes sRGB: {srgb} (checked in {check_ms:.1f} ms, once)")
        data = path.read_bytes()
        for w in widths:
            line = []
            for fmt in FORMATS:
                opts = RenderOptions("w", w, fmt, width, height)
                kept, served = encode(load(data, opts), opts, encoding), render(data, opts, encoding)
                assert pyvips.Image.new_from_buffer(served, "").width == min(w, width)
                totals[(w, fmt)][0] += len(kept)
                totals[(w, fmt)][1] += len(served)
                line.append(f"{fmt} {len(kept):>7} -> {len(served):>7} ({len(served) / len(kept):.3f} x)")
            print(f"  w{w:<5}" + "   ".join(line))
    if tagged:
        print(f"\nall {len(tagged)} tagged photos, served bytes / bytes with the profile kept:")
        for w in widths:
            print(f"  w{w:<5}" + "   ".join(
                f"{fmt} {totals[(w, fmt)][1] / totals[(w, fmt)][0]:.3f} x" for fmt in FORMATS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
