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


def first_frame(data: bytes, coded: tuple[int, int]) -> pyvips.Image:
    """The first frame, upright (libjxl applies the orientation), as 8-bit sRGB or grey, alpha kept;
    ValueError unless it is `coded` (the header's width and height), or that turned.
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
    if {width, height} != set(coded):
        raise ValueError(f"it decodes to {width} x {height}, its header says {coded[0]} x {coded[1]}")
    image = pyvips.Image.new_from_memory(np.ascontiguousarray(pixels).tobytes(), width, height, bands, "uchar")
    return image.copy(interpretation="b-w" if bands <= 2 else "srgb")
