"""Embedded colour profiles: one that only says sRGB is left out of every render, any other is kept."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvips
from PIL import ImageCms

from origin.pipeline import profiles
from origin.pipeline.render import Encoding, RenderOptions, encode, load, render

from tests import images

# plasma-workspace-wallpapers: a camera photo carrying the classic 3,144-byte sRGB IEC61966-2.1 profile,
# and one carrying a 6,924-byte sRGB profile of another maker
KITE = Path("/usr/share/wallpapers/Kite/contents/images/2560x1600.jpg")
CUPS = Path("/usr/share/wallpapers/ColorfulCups/contents/images/2560x1600.jpg")


def profile_of(data: bytes) -> bytes | None:
    image = pyvips.Image.new_from_buffer(data, "")
    return image.get("icc-profile-data") if image.get_typeof("icc-profile-data") else None


def rgb(image: pyvips.Image) -> np.ndarray:
    image = image.cast("uchar")
    return np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8,
                      shape=(image.height, image.width, image.bands)).astype(np.int16)


def p3_profile() -> bytes:
    return pyvips.Image.new_from_buffer(images.jpeg(), "").icc_transform("p3").get("icc-profile-data")


def test_which_profiles_describe_srgb():
    assert profiles.describes_srgb(profile_of(KITE.read_bytes()))
    assert profiles.describes_srgb(profile_of(CUPS.read_bytes()))
    assert profiles.describes_srgb(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    assert not profiles.describes_srgb(p3_profile())  # wide gamut: its colours are not sRGB's
    cmyk = pyvips.Image.new_from_buffer(images.jpeg(), "").icc_transform("cmyk").get("icc-profile-data")
    assert not profiles.describes_srgb(cmyk)
    broken = bytearray(profile_of(KITE.read_bytes()))
    broken[200:] = bytes(len(broken) - 200)  # an RGB header, its tags zeroed: lcms leaves the pixels alone
    assert profiles.describes_srgb(bytes(broken))
    garbage = bytes(broken[:128]) + b"\xff" * 64  # a header and a tag count no table follows: corrupt
    assert profiles.describes_srgb(garbage)  # libvips and browsers ignore both: they say nothing
    assert not profiles.describes_srgb(b"")
    padded = profile_of(KITE.read_bytes()) + bytes(profiles.MEASURED_MAX)  # sRGB, but too big to be worth a check
    assert not profiles.describes_srgb(padded)


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif", "png"])
def test_an_srgb_profile_is_left_out_and_the_colours_stay(fmt):
    data = KITE.read_bytes()
    opts = RenderOptions("w", 300, fmt, 2560, 1600)
    out = render(data, opts, Encoding())
    assert profile_of(out) is None
    kept = encode(load(data, opts), opts, Encoding())  # as renders were, the profile kept
    assert profile_of(kept) == profile_of(data)
    assert len(kept) - len(out) >= (2000 if fmt == "png" else 3000), (len(kept), len(out))  # the 3,144-byte profile (PNG: deflated)
    # what a colour-managed browser showed with the profile (the pixels converted by it) is what it
    # shows now, untagged, as sRGB
    tagged = pyvips.Image.thumbnail_buffer(data, 300, height=100_000).copy_memory()
    assert tagged.get_typeof("icc-profile-data")
    shown_before = rgb(tagged.icc_transform("srgb", embedded=True))
    assert np.abs(shown_before - rgb(tagged)).max() <= profiles.MAX_SHIFT
    if fmt == "png":  # lossless: the served pixels are the decoded ones, untouched
        assert np.array_equal(rgb(pyvips.Image.new_from_buffer(out, "")), rgb(tagged))


def test_a_wide_gamut_profile_is_kept():
    photo = pyvips.Image.new_from_file(str(images.PHOTOS[0])).thumbnail_image(640)
    p3 = photo.icc_transform("p3").jpegsave_buffer(Q=90)
    for fmt in ("jpeg", "webp", "avif", "png"):
        out = render(p3, RenderOptions("w", 300, fmt, 640, photo.height), Encoding())
        assert profile_of(out) == p3_profile(), fmt
