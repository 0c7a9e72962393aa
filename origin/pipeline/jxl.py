"""JPEG XL with imagecodecs (BSD-3-Clause; its wheel carries libjxl, BSD-3-Clause): the encoder, and
the decoder that makes an uploaded JPEG XL's master (origin/ingest/originals.py).

pyvips-binary has no JPEG XL saver, so the picture leaves libvips as 8-bit sRGB pixels (alpha
kept) and imagecodecs' libjxl encodes them. Its encoder takes no ICC profile: a picture with an
embedded profile is converted to sRGB with that profile first (libvips' lcms), and the JPEG XL
codestream says sRGB, so colours match what the other formats show with their profile kept.
"""
from __future__ import annotations

import numpy as np
import pyvips

EXIF_MAX = 1 << 20  # a compressed Exif box is decoded into at most this many bytes (a JPEG's fits in 64 KiB)
EFFORT = 5  # libjxl's effort (1-9; 7 is its default): see origin/pipeline/deferral.py for its cost


def pixels(image: pyvips.Image) -> np.ndarray:
    """8-bit sRGB (or grey) pixels, alpha kept, as a height x width x bands array."""
    if image.get_typeof("icc-profile-data"):
        try:
            image = image.icc_transform("srgb", embedded=True, intent="relative")
        except pyvips.Error:  # an unreadable profile: the pixels as they are, as the other encoders see them
            pass
    grey = image.interpretation in ("b-w", "grey16")
    if image.interpretation not in ("srgb", "b-w"):
        image = image.colourspace("b-w" if grey else "srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    return np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8,
                      shape=(image.height, image.width, image.bands))


def encode(image: pyvips.Image, quality: int, effort: int = EFFORT) -> bytes:
    import imagecodecs

    data = pixels(image)
    if data.shape[2] == 1:
        data = data[:, :, 0]
    return bytes(imagecodecs.jpegxl_encode(data, level=quality, effort=effort, numthreads=1))


def decode(data: bytes) -> np.ndarray:
    import imagecodecs

    return imagecodecs.jpegxl_decode(data)


def first_frame(data: bytes) -> pyvips.Image:
    """The first frame, upright (libjxl applies the orientation), as 8-bit sRGB or grey, alpha kept.
    Wider samples are scaled down to 8 bits; the colour profile is not carried (imagecodecs does not
    return it): libjxl's output is sRGB for most files, including every lossy (XYB) one."""
    import imagecodecs

    pixels = imagecodecs.jpegxl_decode(data, index=0)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    elif pixels.dtype.kind == "f":
        pixels = np.rint(np.clip(pixels, 0.0, 1.0) * 255).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        raise ValueError(f"unexpected sample type {pixels.dtype}")
    height, width, bands = pixels.shape
    image = pyvips.Image.new_from_memory(np.ascontiguousarray(pixels).tobytes(), width, height, bands, "uchar")
    return image.copy(interpretation="b-w" if bands <= 2 else "srgb")


def exif(data: bytes) -> bytes | None:
    """The TIFF bytes of a container's Exif box (plain, or Brotli-compressed in a `brob` box, as
    libjxl writes it for a recompressed JPEG), if it has one."""
    import imagecodecs

    if not data.startswith(b"\x00\x00\x00\x0cJXL "):
        return None
    pos = 0
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        head = 8
        if size == 1:
            size, head = int.from_bytes(data[pos + 8:pos + 16], "big"), 16
        elif size == 0:
            size = len(data) - pos
        if size < head:
            return None
        body = data[pos + head:pos + size]
        if kind == b"brob" and body[:4] == b"Exif":
            try:
                kind, body = b"Exif", bytes(imagecodecs.brotli_decode(body[4:], out=EXIF_MAX))
            except Exception:  # an unreadable box, or one over EXIF_MAX, is only missing metadata
                return None
        if kind == b"Exif":
            offset = 4 + int.from_bytes(body[:4], "big") if len(body) >= 4 else len(body)
            return body[offset:] or None
        pos += size
    return None
