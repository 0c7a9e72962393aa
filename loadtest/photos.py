"""Real photos for the benchmarks, from Debian's wallpaper packages (the Makefile's TEST_PACKAGES),
and more distinct contents made from them by flipping, turning, cropping and re-encoding.

    mate-backgrounds           nature/*.jpg (12 photos, 1280-2560 px) and the 16 MB 5640 x 3172 Elephants
    lomiri-wallpapers-16.04    15 photos from a wallpaper contest, 1365-5312 px, 0.5-1.8 MB
    lomiri-wallpapers-20.04    2 photos: Kleiber (6028 x 3391), Infinite Sea (4096 x 4096)

`distinct(n)` gives n JPEGs whose perceptual hashes all differ by more than the dedup
distance, so none of them collapses into another at ingest: n contents, not fewer.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pyvips

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from origin.ingest.process import perceptual_hash, upright_base  # noqa: E402
from origin.ports.hash_index import hamming  # noqa: E402

BACKGROUNDS = Path("/usr/share/backgrounds")
PHOTOS = sorted((BACKGROUNDS / "mate" / "nature").glob("*.jpg")) + [
    BACKGROUNDS / "mate" / "abstract" / "Elephants_5640x3172.jpg"] + [
    BACKGROUNDS / name for name in (
        "Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg", "Picture_0B_by_freespace.jpg",
        "Picture_1A_by_freespace.jpg", "Wine_by_Jakkub_Mede.jpg", "aitzgorri_by_Aitzol_Berasategi.jpg",
        "analogpattern_by_Peter_Nerlich.jpg", "free_by_Peter_Nerlich.jpg", "friends_by_Aitzol_Berasategi.jpg",
        "greentock_by_Peter_Nerlich.jpg", "life_by_Aitzol_Berasategi.jpg", "picosdeeuropa_by_Aitzol_Berasategi.jpg",
        "seeding_by_Clements_Engelhardt.jpg", "sunset_by_Aitzol_Berasategi.jpg", "umang_by_Abhishek_Mudgal.jpg",
        "Kleiber_by_Lukas_Baubkus.jpg", "Infinite-Sea_by_Aury88.jpg")]
PHOTOS = [p for p in PHOTOS if p.exists()]
DEDUP_DISTANCE = 6  # IMAGEHOST_DEDUP_DISTANCE's default


def _transforms():
    """(name, function) pairs, each a different picture to the perceptual hash."""
    def crop(fx, fy, fw):
        def cut(im):
            w, h = int(im.width * fw), int(im.height * fw)
            return im.crop(int((im.width - w) * fx), int((im.height - h) * fy), w, h)
        return cut

    return [
        ("as-is", lambda im: im),
        ("mirrored", lambda im: im.fliphor()),
        ("upside-down", lambda im: im.flipver()),
        ("turned", lambda im: im.rot180()),
        ("portrait", lambda im: im.rot90()),
        ("crop-top-left", crop(0.0, 0.0, 0.7)),
        ("crop-bottom-right-mirrored", lambda im: crop(1.0, 1.0, 0.7)(im).fliphor()),
        ("crop-centre", crop(0.5, 0.5, 0.55)),
        ("portrait-mirrored", lambda im: im.rot270().fliphor()),
        ("crop-top-right-upside-down", lambda im: crop(1.0, 0.0, 0.6)(im).flipver()),
    ]


def _phash(data: bytes, width: int, height: int) -> int:
    return perceptual_hash(upright_base(data, width, height, 300))


def distinct(count: int, cache: Path, quality: int = 90, photos: list[Path] | None = None) -> list[Path]:
    """`count` distinct JPEGs (camera-like: q90, 4:2:0, ICC kept) under `cache` (made once, reused)."""
    cache.mkdir(parents=True, exist_ok=True)
    photos = photos or PHOTOS
    made: list[Path] = []
    hashes: list[int] = []
    for name, transform in _transforms():
        for photo in photos:
            if len(made) >= count:
                return made
            tag = hashlib.sha1(f"{photo.name}/{name}/{quality}".encode()).hexdigest()[:10]
            path = cache / f"{photo.stem}-{name}-{tag}.jpg"
            if not path.exists():
                image = transform(pyvips.Image.new_from_file(str(photo)).autorot())
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(image.jpegsave_buffer(Q=quality, keep="icc"))
                tmp.rename(path)
            data = path.read_bytes()
            head = pyvips.Image.new_from_buffer(data, "")
            phash = _phash(data, head.width, head.height)
            if any(hamming(phash, other) <= DEDUP_DISTANCE for other in hashes):
                continue  # the pipeline would collapse it into one already made
            hashes.append(phash)
            made.append(path)
    if len(made) < count:
        raise SystemExit(f"only {len(made)} distinct photos from {len(photos)} originals; "
                         "install the Makefile's TEST_PACKAGES (make test-packages)")
    return made
