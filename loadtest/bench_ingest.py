"""Upload-to-ready time through the whole pipeline (a benchmark script, not a test).

Starts the origin on the embedded defaults with its in-process workers, real clamd
(the project's signatures, warmed by one scan first) and the real default moderation model (open_nsfw),
then uploads a 12-megapixel JPEG and a 12-megapixel HEVC HEIC several times each
and reports the time from the start of the upload to `ready` (validation, scan,
moderation, metadata, hashes and the twelve eager thumbnails).

    .venv/bin/python loadtest/bench_ingest.py [--runs 5]

Target on the 2-core machine: under 2 s, clamd warm.
"""
from __future__ import annotations

import argparse
import io
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


def twelve_megapixels(count: int) -> tuple[list[bytes], list[bytes]]:
    """`count` distinct JPEGs and HEICs of the same 12 MP photo (other qualities, other bytes),
    so every upload is new content: dedup would otherwise skip the work being measured."""
    import pillow_heif
    from PIL import Image

    photo = pyvips.Image.thumbnail(str(BIG_PHOTO), 4620).copy_memory()  # 4620 × 2598 ≈ 12.0 MP
    jpegs = [photo.jpegsave_buffer(Q=90 - i) for i in range(count)]
    heics = []
    for i, jpeg in enumerate(jpegs):
        out = io.BytesIO()
        pillow_heif.from_pillow(Image.open(io.BytesIO(jpeg))).save(out, format="HEIF", quality=80 - i)
        heics.append(out.getvalue())
    return jpegs, heics


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    jpegs, heics = twelve_megapixels(args.runs + 1)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        clamd = Settings(data_dir=Path(tmp) / "clamd")
        sock = ensure_clamd(clamd)
        env = {**KEYS_ENV, "IMAGEHOST_CLAMD_SOCKET": sock, "IMAGEHOST_MODERATION": "open_nsfw",
               "IMAGEHOST_DEDUP_PERCEPTUAL": "0"}  # the same photo each time: measure the work, not a link
        server = None
        try:
            server = start_origin(Path(tmp) / "var", env)
            measure(server.url, jpegs[-1:], "warm-up.jpg")  # loads the model, warms clamd
            rows = [("12 MP JPEG", len(jpegs[0]), measure(server.url, jpegs[:-1], "photo.jpg")),
                    ("12 MP HEVC HEIC", len(heics[0]), measure(server.url, heics[:-1], "photo.heic"))]
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
