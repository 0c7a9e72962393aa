"""Store an original: sniff, read its header, check it decodes, keep it, record it.

Phone HEIC is HEVC-coded and libvips' own libheif cannot decode HEVC, and
pyvips-binary's libvips has no JPEG XL loader, so such a file is decoded once
here (pillow-heif; imagecodecs' libjxl, its first frame) into a high-quality
master (JPEG q95 4:4:4, or PNG when it has alpha) that every later render starts
from; the untouched original is kept beside it.
"""
from __future__ import annotations

import hashlib
import io
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pyvips

from origin import keys
from origin.errors import UnsupportedImage
from origin.formats import FORMATS, NEEDS_MASTER
from origin.ingest.dedup import count_duplicate
from origin.ingest.sniff import sniff
from origin.ingest.validate import Limits, Rejected, coded_size, validate
from origin.pipeline import fallback, jxl, placeholders, sources
from origin.pipeline.records import served_record
from origin.ports.catalog import Catalog, Content, ImageRecord
from origin.ports.store import Store


@dataclass(frozen=True)
class Header:
    fmt: str
    width: int  # display width, after EXIF orientation
    height: int
    has_alpha: bool
    pages: int


@dataclass(frozen=True)
class Decoded:
    header: Header
    master: bytes | None  # set when renders must start from a decoded master
    intermediates: dict = field(default_factory=dict)  # {rung: bytes}: the render intermediates (sources.py)


def gets_master(data: bytes) -> bool:
    """HEIC and JPEG XL are decoded once, into their master, which is their decode check too."""
    try:
        return sniff(data[:64]) in NEEDS_MASTER
    except UnsupportedImage:
        return False


def new_id() -> str:
    return secrets.token_urlsafe(12)


def read_header(data: bytes, fmt: str) -> Header:
    """Dimensions, alpha and frame count from the header: no pixels are decoded."""
    try:
        image = pyvips.Image.new_from_buffer(data, "", access="sequential")
    except pyvips.Error as exc:
        raise UnsupportedImage(f"unreadable {fmt} header: {str(exc).splitlines()[0]}") from None
    width, height = image.width, image.height
    pages = image.get("n-pages") if image.get_typeof("n-pages") else 1
    if pages > 1 and image.get_typeof("page-height"):
        height = image.get("page-height")
    orientation = image.get("orientation") if image.get_typeof("orientation") else 1
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return Header(fmt, width, height, bool(image.hasalpha()), int(pages))


def decode_box(sizes: tuple[int, ...]):
    """`validate`'s decode_box: the long side to decode into when the picture gets intermediates."""
    def box(width: int, height: int, frames: int) -> int | None:
        return sources.intermediate_box(sizes, width, height, frames)
    return box


def _picture(header: Header) -> sources.Picture:
    return sources.Picture("-", header.fmt, header.width, header.height, header.has_alpha, header.pages)


def prepare(data: bytes, fmt: str, sizes: tuple[int, ...] = (), decoded=None) -> Decoded:
    """Header facts for rendering, a master where libvips cannot decode the source itself, and
    the render intermediate where one pays, from `decoded` (validate's decode, upright) or the master.

    Call it on bytes that passed `validate` (which already proved they decode)."""
    if fmt == "jxl":
        return _jxl_master(data, sizes)
    if fmt in NEEDS_MASTER:
        return _heif_master(data, sizes)
    header = read_header(data, fmt)
    made = sources.rungs(decoded, _picture(header), sizes) if decoded is not None else {}
    return Decoded(header, None, made)


def _heif_master(data: bytes, sizes: tuple[int, ...] = ()) -> Decoded:
    import pillow_heif

    try:
        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
        image = heif.to_pillow()  # libheif applies the rotation and mirroring boxes
    except Exception as exc:  # pillow-heif raises plain ValueError/RuntimeError
        raise UnsupportedImage(f"the heic data does not decode: {exc}") from None
    has_alpha = "A" in image.getbands()
    icc = image.info.get("icc_profile")
    out = io.BytesIO()
    if has_alpha:
        image.save(out, "PNG", icc_profile=icc, compress_level=1)
    else:
        image.convert("RGB").save(out, "JPEG", quality=95, subsampling=0, icc_profile=icc)
    header = Header("heic", image.width, image.height, has_alpha, 1)
    made = {}
    box = sources.intermediate_box(sizes, image.width, image.height, 1)
    if box is not None:  # from the same decode as the master
        upright = sources.from_pillow(image).thumbnail_image(box, height=box, size="down")
        made = sources.rungs(upright, _picture(header), sizes)
    return Decoded(header, out.getvalue(), made)


def _jxl_master(data: bytes, sizes: tuple[int, ...] = ()) -> Decoded:
    try:
        image = jxl.first_frame(data, coded_size(data, "jxl"))
    except Exception as exc:  # imagecodecs raises its own JpegxlError; a size other than the header's, ValueError
        raise UnsupportedImage(f"the jxl data does not decode: {exc}") from None
    has_alpha = image.hasalpha()
    master = (image.pngsave_buffer(compression=1) if has_alpha
              else image.jpegsave_buffer(Q=95, subsample_mode="off"))
    header = Header("jxl", image.width, image.height, has_alpha, 1)
    box = sources.intermediate_box(sizes, image.width, image.height, 1)
    made = sources.rungs(image.thumbnail_image(box, height=box, size="down"), _picture(header), sizes) \
        if box is not None else {}
    return Decoded(header, master, made)


def store_decoded(store: Store, content_id: str, decoded: Decoded, alias: bool) -> None:
    """The master and the intermediate of a content (an alias stores only what is missing)."""
    header = decoded.header
    mime = "image/png" if header.has_alpha else "image/jpeg"
    objects = [(keys.master_key(content_id, header.has_alpha), decoded.master, "")] + [
        (keys.intermediate_key(content_id, header.has_alpha, rung), blob, mime)
        for rung, blob in decoded.intermediates.items()]
    for key, blob, content_type in objects:
        if blob is not None and (not alias or not store.exists(key)):
            store.put(key, blob, content_type)


def placeholder(in_memory, decoded: Decoded, data: bytes) -> str:
    """The ThumbHash from the smallest picture at hand: validation's upright decode (in memory), else the
    smallest intermediate (a HEIC's, from its master's decode), else the upload itself (too small for
    an intermediate, or an animation: its first frame)."""
    if in_memory is not None:
        return placeholders.of_image(in_memory)
    if decoded.intermediates:
        return placeholders.of_source(min(decoded.intermediates.values(), key=len))
    return placeholders.of_source(decoded.master or data)


def ingest(data: bytes, store: Store, catalog: Catalog, *, limits: Limits, state: str = "ready",
           owner: str = "", filename: str = "", metrics=None, intermediate_sizes: tuple[int, ...] = ()) -> ImageRecord:
    """Store `data` as a new image and return its record (the trusted bulk import: no scan, no moderation).

    Bytes already stored (the same SHA-256 as a live content) make the new record an alias of
    that content and nothing is stored again (origin/ingest/dedup.py). The record is written
    first, unservable, and attached to its content before anything is stored under it; it
    becomes `state` only once its bytes are there."""
    try:
        checked = validate(data, limits, filename=filename or None, decode=not gets_master(data),
                           decode_box=decode_box(intermediate_sizes))
    except Rejected as exc:
        raise UnsupportedImage(exc.message, reason=exc.reason) from None
    fmt = checked.fmt
    decoded = prepare(data, fmt, intermediate_sizes, checked.decoded)
    header = decoded.header
    image_id = new_id()
    sha256 = hashlib.sha256(data).hexdigest()
    record = ImageRecord(
        id=image_id,
        content_type=FORMATS[fmt].mime,
        width=header.width,
        height=header.height,
        bytes=len(data),
        sha256=sha256,
        state="requested",  # not served, and no worker's job
        has_alpha=header.has_alpha,
        pages=header.pages,
        created_at=datetime.now(timezone.utc),
        owner=owner,
        filename=filename,
    )
    catalog.add(record)
    content = Content(id=image_id, sha256=sha256, content_type=FORMATS[fmt].mime, width=header.width,
                      height=header.height, has_alpha=header.has_alpha, pages=header.pages, bytes=len(data))
    attached = catalog.attach(image_id, content, ("requested",))
    content_id = attached.content.id
    source_key = keys.source_key(content_id, fmt)
    if not attached.alias or not store.exists(source_key):  # an alias stores only what is missing
        store.put(source_key, data, FORMATS[fmt].mime)
    store_decoded(store, content_id, decoded, attached.alias)
    if not attached.content.thumbhash:
        catalog.set_content_thumbhash(content_id, placeholder(checked.decoded, decoded, data))
    if state == "ready":  # the record fallback first (origin/pipeline/fallback.py), then ready
        fallback.write(store, served_record(catalog, catalog.get(image_id)))
    catalog.transition(image_id, ("requested",), state)
    if attached.alias:
        count_duplicate(metrics, "exact", len(data) + len(decoded.master or b""))
    return catalog.get(image_id)
