"""Colour profiles that say nothing: an embedded ICC profile that describes sRGB.

Browsers, and every other decoder a page reaches, take untagged pixels as sRGB, so a profile that
maps the pixels to the colours sRGB gives them is bytes without meaning. Cameras and editors embed
one often: the classic `sRGB IEC61966-2.1` is 3,144 bytes, half of a 300-px WebP. A render leaves
such a profile out (render.colour); any other profile (Display P3, Adobe RGB, a printer's) is kept,
so wide-gamut pictures keep their colours.

"Describes sRGB" is measured, not read from the profile's name: a cube of 17^3 colours is
converted from the profile to libvips' own sRGB, with the relative colorimetric and the perceptual
intent, and no channel of any colour may move by more than MAX_SHIFT levels of 255 (less than a
just-noticeable colour difference). A profile the colour engine cannot use (corrupt, or tables it
cannot read) measures the same way: libvips warns and leaves the pixels as they are, as a browser
ignores a profile it cannot read, so it says nothing either and is left out. The verdict is
remembered per profile (by digest): a picture's renders, and every picture from the same camera,
pay for it once.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pyvips

MAX_SHIFT = 2  # levels of 255
# larger profiles are kept unmeasured: sRGB's fit in far less (the ICC's own sRGB v4 preference
# profile, tables and all, is 60,960 bytes); a printer's CLUTs or a crafted blob are not worth a check
MEASURED_MAX = 256 * 1024
LEVELS = 17
REMEMBERED = 256  # verdicts kept; the whole table is forgotten when it is full

_verdicts: dict[bytes, bool] = {}


def _cube() -> tuple[pyvips.Image, np.ndarray]:
    levels = np.linspace(0, 255, LEVELS).round().astype(np.uint8)
    cube = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(LEVELS * LEVELS, LEVELS, 3)
    cube = np.ascontiguousarray(cube)
    image = pyvips.Image.new_from_memory(cube.tobytes(), LEVELS, LEVELS * LEVELS, 3, "uchar")
    return image.copy(interpretation="srgb"), cube.astype(np.int16)


def _measure(profile: bytes) -> bool:
    probe, expected = _cube()
    probe.set_type(pyvips.GValue.blob_type, "icc-profile-data", profile)
    for intent in ("relative", "perceptual"):
        try:
            out = probe.icc_transform("srgb", embedded=True, intent=intent).cast("uchar")
        except pyvips.Error:
            return False
        got = np.ndarray(buffer=out.write_to_memory(), dtype=np.uint8, shape=expected.shape).astype(np.int16)
        if np.abs(got - expected).max() > MAX_SHIFT:
            return False
    return True


def describes_srgb(profile: bytes) -> bool:
    """Whether `profile` (an ICC profile's bytes) maps RGB pixels to sRGB's own colours."""
    if not 128 <= len(profile) <= MEASURED_MAX or profile[16:20] != b"RGB ":  # the header's colour space
        return False
    key = hashlib.sha256(profile).digest()
    verdict = _verdicts.get(key)
    if verdict is None:
        verdict = _measure(profile)
        if len(_verdicts) >= REMEMBERED:
            _verdicts.clear()
        _verdicts[key] = verdict
    return verdict


def without_srgb_profile(image: pyvips.Image) -> pyvips.Image:
    """`image` without its embedded profile when that profile describes sRGB; else `image`."""
    if image.interpretation not in ("srgb", "rgb16") or not image.get_typeof("icc-profile-data"):
        return image
    if not describes_srgb(image.get("icc-profile-data")):
        return image
    image = image.copy()
    image.remove("icc-profile-data")
    return image
