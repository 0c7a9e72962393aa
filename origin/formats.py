"""The image formats the host knows: names, extensions, MIME types, abilities."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    name: str  # as in URLs: /w300.webp
    ext: str  # as in store keys
    mime: str
    animates: bool  # can carry several frames
    alpha: bool  # can carry transparency
    output: bool  # offered as a delivery format


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("jpeg", "jpg", "image/jpeg", animates=False, alpha=False, output=True),
        Format("png", "png", "image/png", animates=False, alpha=True, output=True),
        Format("webp", "webp", "image/webp", animates=True, alpha=True, output=True),
        Format("avif", "avif", "image/avif", animates=False, alpha=True, output=True),
        Format("jxl", "jxl", "image/jxl", animates=False, alpha=True, output=True),
        Format("gif", "gif", "image/gif", animates=True, alpha=True, output=True),
        Format("heic", "heic", "image/heic", animates=False, alpha=True, output=False),
    )
}

# sources libvips cannot decode itself (HEVC-coded HEIC; JPEG XL, which pyvips-binary's libvips
# lacks): decoded once at ingest into a master
NEEDS_MASTER = frozenset({"heic", "jxl"})

OUTPUT_FORMATS = tuple(name for name, f in FORMATS.items() if f.output)

BY_MIME = {f.mime: f for f in FORMATS.values()}


def by_name(name: str) -> Format:
    return FORMATS[name]


def by_mime(mime: str) -> Format:
    return BY_MIME[mime]
