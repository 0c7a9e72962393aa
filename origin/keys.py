"""Store keys: they mirror the delivery URLs.

    images/{id}/source.{ext}       the untouched upload, metadata and all (owner only)
    images/{id}/master.{jpg|png}   a decoded master, for sources libvips cannot decode (HEVC HEIC)
    images/{id}/original.{ext}     /images/{id}/original: auto-rotated, stripped
    images/{id}/w1200.avif         /images/{id}/w1200.avif, and so on
"""
from __future__ import annotations

from origin.formats import FORMATS


def prefix(image_id: str) -> str:
    return f"images/{image_id}/"


def source_key(image_id: str, fmt: str) -> str:
    return f"{prefix(image_id)}source.{FORMATS[fmt].ext}"


def master_key(image_id: str, has_alpha: bool) -> str:
    return f"{prefix(image_id)}master.{'png' if has_alpha else 'jpg'}"


def variant_key(image_id: str, name: str, fmt: str) -> str:
    return f"{prefix(image_id)}{name}.{FORMATS[fmt].ext}"
