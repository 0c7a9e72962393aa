"""Store keys. They live under a *content* id (see origin/ports/catalog.py): the
delivery URL `/images/{record id}/w1200.avif` of a record whose content is C reads
`images/C/w1200.avif`. A record made before contents existed is its own content.

    images/{content}/source.{ext}      the untouched upload, metadata and all (owner only)
    images/{content}/master.{jpg|png}  a decoded master, for sources libvips cannot decode (HEVC HEIC)
    images/{content}/original.{ext}    /images/{id}/original: auto-rotated, stripped
    images/{content}/w1200.avif        /images/{id}/w1200.avif, and so on
    sources/{content}/source.{ext}     an upload kept for its owners after its content was collapsed
                                       into a near-duplicate (origin/ingest/compact.py)
"""
from __future__ import annotations

from origin.formats import FORMATS

IMAGES = "images"
SOURCES = "sources"


def prefix(content_id: str) -> str:
    return f"{IMAGES}/{content_id}/"


def source_key(content_id: str, fmt: str) -> str:
    return f"{prefix(content_id)}source.{FORMATS[fmt].ext}"


def master_key(content_id: str, has_alpha: bool) -> str:
    return f"{prefix(content_id)}master.{'png' if has_alpha else 'jpg'}"


def variant_key(content_id: str, name: str, fmt: str) -> str:
    return f"{prefix(content_id)}{name}.{FORMATS[fmt].ext}"


def kept_prefix(content_id: str) -> str:
    return f"{SOURCES}/{content_id}/"


def kept_source_key(content_id: str, fmt: str) -> str:
    return f"{kept_prefix(content_id)}source.{FORMATS[fmt].ext}"
