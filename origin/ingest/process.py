"""Processing a validated image: metadata, perceptual hash, eager thumbnails.

    metadata     dimensions, format, colour space, orientation, camera make and
                 model, capture time, whether GPS was present (read, never served)
    pHash        64-bit perceptual hash of the upright picture (SHA-256 is taken at validation)
    placeholder  the ThumbHash of the same upright base (origin/pipeline/placeholders.py; the worker keeps it)
    thumbnails   every allow-listed sq and sm size as WebP and AVIF, cut from one
                 decode (animations go through the lazy renderer, frame by frame)

Public outputs never carry EXIF/XMP/IPTC: the renderer keeps only the ICC profile.
"""
from __future__ import annotations

import io

import imagehash
import pyvips
from PIL import Image

from origin import keys
from origin.formats import FORMATS
from origin.ingest.sniff import JXL_CONTAINER
from origin.ingest.validate import boxes
from origin.pipeline.render import Encoding, RenderOptions, colour, encode, render

EXIF_IFD, GPS_IFD = 0x8769, 0x8825
MAKE, MODEL, DATETIME, DATETIME_ORIGINAL, ORIENTATION = 0x010F, 0x0110, 0x0132, 0x9003, 0x0112
THUMB_FORMATS = ("webp", "avif")
EXIF_MAX = 1 << 20  # a compressed Exif box is inflated into at most this many bytes (a JPEG's fits in 64 KiB)


def exif_bytes(data: bytes, fmt: str) -> bytes | None:
    if fmt == "heic":
        import pillow_heif

        return pillow_heif.open_heif(io.BytesIO(data)).info.get("exif")
    if fmt == "jxl":
        return jxl_exif(data)
    image = pyvips.Image.new_from_buffer(data, "")
    return image.get("exif-data") if image.get_typeof("exif-data") else None


def jxl_exif(data: bytes) -> bytes | None:
    """The TIFF bytes of a JPEG XL container's Exif box (plain, or Brotli-compressed in a `brob` box,
    as libjxl writes it for a recompressed JPEG), if it has one; an unreadable one is only missing."""
    import imagecodecs

    if not data.startswith(JXL_CONTAINER):
        return None  # a bare codestream has no boxes
    view = memoryview(data).toreadonly()
    try:
        for kind, start, end in boxes(view, 0, len(data)):
            if kind == b"brob" and view[start:start + 4] == b"Exif":
                body = bytes(imagecodecs.brotli_decode(view[start + 4:end], out=EXIF_MAX))
            elif kind == b"Exif":
                body = bytes(view[start:end])
            else:
                continue
            tiff = body[4 + int.from_bytes(body[:4], "big"):] if len(body) >= 4 else b""  # after its offset field
            return tiff or None
    except Exception:  # a box that overruns, Brotli that does not decode or inflates past EXIF_MAX
        return None
    return None


def metadata(data: bytes, fmt: str, width: int, height: int, render_source: bytes) -> dict:
    """What the catalog keeps about an image (never served publicly)."""
    header = pyvips.Image.new_from_buffer(render_source, "")
    info: dict = {
        "format": fmt,
        "width": width,
        "height": height,
        "colour_space": str(header.interpretation),
        "has_icc_profile": bool(header.get_typeof("icc-profile-data")),
        "orientation": 1,
        "camera_make": None,
        "camera_model": None,
        "captured_at": None,
        "gps_present": False,
    }
    raw = exif_bytes(data, fmt)
    if raw:
        exif = Image.Exif()
        try:
            exif.load(raw[6:] if raw.startswith(b"Exif\0\0") else raw)
        except Exception:  # unreadable EXIF is only missing metadata, never a failure
            return info
        sub = exif.get_ifd(EXIF_IFD)
        info["orientation"] = int(exif.get(ORIENTATION, 1) or 1)
        info["camera_make"] = _text(exif.get(MAKE))
        info["camera_model"] = _text(exif.get(MODEL))
        info["captured_at"] = _exif_time(sub.get(DATETIME_ORIGINAL) or exif.get(DATETIME))
        info["gps_present"] = bool(exif.get_ifd(GPS_IFD))
    return info


def _text(value) -> str | None:
    if value is None:
        return None
    text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return text.strip("\0 ").strip() or None


def _exif_time(value) -> str | None:
    text = _text(value)
    if not text or len(text) < 19:
        return None
    date, _, clock = text.partition(" ")
    return f"{date.replace(':', '-')}T{clock}"


def upright_base(render_source: bytes, width: int, height: int, short_side: int) -> pyvips.Image:
    """One decode, shrink-on-load: upright, the short side brought to `short_side`, held in memory."""
    if width >= height:
        base = pyvips.Image.thumbnail_buffer(render_source, 10_000_000, height=short_side, size="down")
    else:
        base = pyvips.Image.thumbnail_buffer(render_source, short_side, height=10_000_000, size="down")
    return base.copy_memory()


def perceptual_hash(base: pyvips.Image) -> int:
    """imagehash's 64-bit pHash of the upright picture, as an unsigned integer."""
    small = base.thumbnail_image(256, height=256)
    small = small.flatten(background=[255, 255, 255]) if small.hasalpha() else small
    picture = Image.open(io.BytesIO(small.colourspace("srgb").pngsave_buffer(compression=1)))
    return int(str(imagehash.phash(picture)), 16)


def thumbnails(base: pyvips.Image, render_source: bytes, image_id: str, width: int, height: int, pages: int,
               sizes: tuple[int, ...], encoding: Encoding) -> dict[str, tuple[bytes, str]]:
    """{store key: (bytes, content type)} for every sq/sm size in WebP and AVIF, cut from `base`."""
    out: dict[str, tuple[bytes, str]] = {}
    for kind in ("sq", "sm"):
        if pages > 1:  # animations: the lazy renderer keeps every frame
            for size in sizes:
                for fmt in THUMB_FORMATS:
                    opts = RenderOptions(kind, size, fmt, width, height, animated=FORMATS[fmt].animates)
                    out[keys.variant_key(image_id, f"{kind}{size}", fmt)] = (
                        render(render_source, opts, encoding), FORMATS[fmt].mime)
            continue
        side = min(base.width, base.height)
        if kind == "sq":
            square = base.crop((base.width - side) // 2, (base.height - side) // 2, side, side)
        else:
            square = base.smartcrop(side, side, interesting="attention")
        for size in sizes:
            scaled = square if size >= side else square.resize(size / side)
            for fmt in THUMB_FORMATS:
                opts = RenderOptions(kind, size, fmt, width, height)
                out[keys.variant_key(image_id, f"{kind}{size}", fmt)] = (
                    encode(colour(scaled, opts), opts, encoding), FORMATS[fmt].mime)
    return out
