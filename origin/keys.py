"""Store keys. They live under a *content* id (see origin/ports/catalog.py): the
delivery URL `/images/{record id}/w1200.avif` of a record whose content is C reads
`images/C/w1200.avif`. A record made before contents existed is its own content.

    images/{content}/source.{ext}      the untouched upload, metadata and all (owner only)
    images/{content}/master.{jpg|png}  a decoded master, for sources libvips cannot decode (HEVC HEIC)
    images/{content}/original.{ext}    /images/{id}/original: auto-rotated, stripped
    images/{content}/w1200.avif        /images/{id}/w1200.avif, and so on
    images/{content}/sq150.webp        eager thumbnails (sq, sm), rendered at ingest
    images/{content}/p-card-1a2b3c4d.webp  /images/{id}/card.webp: a preset, the digest of its
                                       definition in the name (origin/presets.py); a lazy variant
    images/{content}/intermediate.*    the render intermediates: smaller upright copies renders start from
                                       (intermediate.jpg, intermediate.1200.jpg: pipeline/sources.py)
    sources/{content}/source.{ext}     an upload kept for its owners after its content was collapsed
                                       into a near-duplicate (origin/ingest/compact.py)
    records/{id}.json                  a ready record's delivery facts, read when the catalog is down
                                       (origin/pipeline/fallback.py)
    uploads/{id}                       an upload not yet validated
    quarantine/{id}/upload             an upload refused by validation, kept for audit

`object_class` names what a key holds (storage tiers, eviction and cost reports go by it).
"""
from __future__ import annotations

import re

from origin.errors import InvalidRequest
from origin.formats import FORMATS

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{6,64}$")  # record and content ids (URL-safe base64)

IMAGES = "images"
SOURCES = "sources"
RECORDS = "records"


def check_id(image_id: str) -> str:
    """An image id as it may appear in a URL and a store key (InvalidRequest otherwise)."""
    if not ID_PATTERN.fullmatch(image_id):
        raise InvalidRequest("malformed image id", image_id=image_id[:80])
    return image_id


def prefix(content_id: str) -> str:
    return f"{IMAGES}/{content_id}/"


def source_key(content_id: str, fmt: str) -> str:
    return f"{prefix(content_id)}source.{FORMATS[fmt].ext}"


def master_key(content_id: str, has_alpha: bool) -> str:
    return f"{prefix(content_id)}master.{'png' if has_alpha else 'jpg'}"


def intermediate_key(content_id: str, has_alpha: bool, size: int | None = None) -> str:
    """A render intermediate (origin/pipeline/sources.py): JPEG, or PNG when the picture has alpha.
    The largest is `intermediate.{ext}`; a smaller rung of the ladder `intermediate.{size}.{ext}`."""
    ext = "png" if has_alpha else "jpg"
    return f"{prefix(content_id)}intermediate.{ext}" if size is None else f"{prefix(content_id)}intermediate.{size}.{ext}"


def variant_key(content_id: str, name: str, fmt: str) -> str:
    return f"{prefix(content_id)}{name}.{FORMATS[fmt].ext}"


def record_key(image_id: str) -> str:
    return f"{RECORDS}/{image_id}.json"


def upload_key(image_id: str) -> str:
    return f"uploads/{image_id}"


def quarantine_key(image_id: str) -> str:
    return f"quarantine/{image_id}/upload"


# what a key holds: originals and what stands in for them are never regenerable; the rest is
OBJECT_CLASSES = ("source", "master", "intermediate", "thumbnail", "variant", "kept_source", "record", "upload",
                  "quarantine")
REGENERABLE = frozenset({"variant"})  # lazily rendered: evicted, it renders again on its next miss
_THUMBNAIL = re.compile(r"^(?:sq|sm)[0-9]+\.[a-z0-9]+$")


def object_class(key: str) -> str:
    top, _, rest = key.partition("/")
    if top == SOURCES:
        return "kept_source"
    if top == RECORDS:
        return "record"
    if top == "uploads":
        return "upload"
    if top == "quarantine":
        return "quarantine"
    name = rest.rpartition("/")[2]
    stem = name.partition(".")[0]
    if stem in ("source", "master", "intermediate"):
        return stem
    if _THUMBNAIL.fullmatch(name):
        return "thumbnail"
    return "variant"  # original.*, w1200.avif, and every other rendered name


def kept_prefix(content_id: str) -> str:
    return f"{SOURCES}/{content_id}/"


def kept_source_key(content_id: str, fmt: str) -> str:
    return f"{kept_prefix(content_id)}source.{FORMATS[fmt].ext}"
