"""The cost benchmark's uploads: distinct real photos, and a realistic share of duplicates.

Real photos are Debian's wallpaper packages (mate-backgrounds, plasma-workspace-wallpapers,
ukui-wallpapers, lomiri-wallpapers, sway-backgrounds): every picture once, at its largest size.
To reach a few hundred distinct contents each picture is uploaded as it is (JPEGs byte for byte;
PNGs as the JPEG q92 a camera or phone would send), mirrored, and every other one cropped to
75 % around a random centre (both re-encoded JPEG q90). Then duplicates, as an image host sees
them (about 15 % of uploads): half exact (the same bytes from another owner), half near (the
same picture shrunk to 70 % and re-encoded q80, as a re-shared copy is). Some packages ship the
same picture twice or at several sizes: those collapse as near-duplicates too, as they would on
any host.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pyvips

ROOTS = (Path("/usr/share/backgrounds"), Path("/usr/share/wallpapers"))
MAX_BYTES = 20 * 1024 * 1024  # the upload limit
MIN_PIXELS = 1_000_000


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes
    kind: str  # photo | mirror | crop | exact | near
    of: str = ""  # the upload it duplicates


def pictures() -> list[Path]:
    """Every wallpaper once: the biggest file of each (plasma ships one picture in several sizes)."""
    groups: dict[str, list[Path]] = {}
    for root in ROOTS:
        for path in root.rglob("*"):
            if path.suffix.lower() not in (".jpg", ".jpeg", ".png") or "screenshot" in path.name:
                continue
            if not path.is_file():
                continue
            key = str(path.parents[2]) if path.parent.name == "images" else str(path)
            groups.setdefault(key, []).append(path)
    chosen = []
    for key in sorted(groups):
        best = max(groups[key], key=lambda p: p.stat().st_size)
        try:
            header = pyvips.Image.new_from_file(str(best))
        except pyvips.Error:
            continue
        if header.width * header.height >= MIN_PIXELS and best.stat().st_size <= MAX_BYTES:
            chosen.append(best)
    return chosen


def _jpeg(image: pyvips.Image, quality: int) -> bytes:
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    return image.colourspace("srgb").jpegsave_buffer(Q=quality, keep="icc")


def corpus(limit: int = 0, seed: int = 1, duplicate_share: float = 0.15) -> list[Upload]:
    """Distinct uploads first (in a shuffled order), with duplicates placed after what they copy."""
    rng = random.Random(seed)
    paths = pictures()
    if limit:
        paths = paths[:limit]
    distinct: list[Upload] = []
    for n, path in enumerate(paths):
        image = pyvips.Image.new_from_file(str(path), access="sequential").autorot()
        image = image.copy_memory()
        raw = path.read_bytes()
        distinct.append(Upload(path.name, raw if path.suffix.lower() in (".jpg", ".jpeg") else _jpeg(image, 92),
                               "photo"))
        distinct.append(Upload(f"{path.stem}-mirror.jpg", _jpeg(image.fliphor(), 90), "mirror"))
        if n % 2 == 0:
            w, h = int(image.width * 0.75), int(image.height * 0.75)
            left, top = rng.randint(0, image.width - w), rng.randint(0, image.height - h)
            distinct.append(Upload(f"{path.stem}-crop.jpg", _jpeg(image.crop(left, top, w, h), 90), "crop"))
    rng.shuffle(distinct)
    copies = round(len(distinct) * duplicate_share / (1 - duplicate_share))
    out = list(distinct)
    for i in range(copies):
        original = distinct[rng.randrange(len(distinct))]
        at = out.index(original) + 1 + rng.randrange(len(out) - out.index(original))
        if i % 2 == 0:
            dup = Upload(f"{original.name}-again", original.data, "exact", original.name)
        else:
            image = pyvips.Image.new_from_buffer(original.data, "")
            dup = Upload(f"{original.name}-reshared.jpg", _jpeg(image.resize(0.7), 80), "near", original.name)
        out.insert(at, dup)
    return out
