"""`imagehost ingest` throughput on distinct real photos, -j 1 against -j 2, interleaved.

    .venv/bin/python loadtest/bench_bulk_ingest.py [--photos 240] [--batch 40]

Makes N distinct JPEGs (q90, longest side at most 4096 px) from every Debian wallpaper photo
installed (a centre crop and a mirrored copy of each), then imports them batch by batch into one
fresh data dir, alternating `-j 1` (the baseline) and `-j 2` batch by batch so machine load hits
both alike. Each file goes the whole way an upload goes but the scan and the model (the
defaults of `imagehost ingest`): validation, exact dedup, metadata, hashes, the 12 eager
thumbnails, perceptual dedup. Prints files/s per setting, the ratio, and the summaries.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtest.bench_moderation import photos  # noqa: E402


def make_photos(count: int, folder: Path) -> list[Path]:
    import pyvips

    made = []
    for source in photos():
        for mode in ("crop", "mirror"):
            if len(made) >= count:
                return made
            image = pyvips.Image.new_from_file(str(source))
            if image.hasalpha():
                image = image.flatten(background=[255, 255, 255])
            if image.bands > 3:
                image = image.extract_band(0, n=3)
            if mode == "crop":
                image = image.crop(image.width // 10, image.height // 10, image.width * 8 // 10, image.height * 8 // 10)
            else:
                image = image.fliphor()
            if max(image.width, image.height) > 4096:
                image = image.resize(4096 / max(image.width, image.height))
            path = folder / f"{len(made):04d}-{mode}-{source.stem[:40]}.jpg"
            image.colourspace("srgb").jpegsave(str(path), Q=90)
            made.append(path)
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=240)
    parser.add_argument("--batch", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagehost-bulk-") as tmp:
        tmp = Path(tmp)
        (tmp / "photos").mkdir()
        files = make_photos(args.photos, tmp / "photos")
        size = sum(f.stat().st_size for f in files)
        print(f"{len(files)} distinct JPEGs made from the installed wallpapers ({size / 1e6:.0f} MB, "
              f"{size / len(files) / 1e6:.1f} MB each on average)")
        env = {**os.environ, "IMAGEHOST_DATA_DIR": str(tmp / "var"), "IMAGEHOST_API_KEYS": "bench-key:bench"}
        totals = {1: [0, 0.0], 2: [0, 0.0]}
        summaries = []
        for n, start in enumerate(range(0, len(files), args.batch)):
            jobs = 1 if n % 2 == 0 else 2
            batch = files[start:start + args.batch]
            began = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "origin.cli", "ingest", "-j", str(jobs), *map(str, batch)],
                                  env=env, cwd=ROOT, capture_output=True, text=True)
            seconds = time.monotonic() - began
            summary = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
            summaries.append(f"  batch {n + 1} (-j {jobs}): {summary}")
            totals[jobs][0] += len(batch)
            totals[jobs][1] += seconds
            print(f"batch {n + 1}: -j {jobs}, {len(batch)} files, {seconds:.1f} s, {len(batch) / seconds:.2f} files/s",
                  flush=True)
        print("\n".join(summaries))
        rate = {j: (c / s if s else 0.0) for j, (c, s) in totals.items()}
        print(f"\n-j 1 (baseline): {totals[1][0]} files in {totals[1][1]:.1f} s, {rate[1]:.2f} files/s")
        print(f"-j 2:            {totals[2][0]} files in {totals[2][1]:.1f} s, {rate[2]:.2f} files/s")
        if rate[1]:
            print(f"ratio -j 2 / -j 1: {rate[2] / rate[1]:.2f}")
        imported = sum(int(m.group(1)) for m in (re.search(r": (\d+) imported", s) for s in summaries) if m)
        print(f"all batches: {len(files)} files in {totals[1][1] + totals[2][1]:.1f} s "
              f"({len(files) / (totals[1][1] + totals[2][1]):.2f} files/s), {imported} imported")


if __name__ == "__main__":
    main()
