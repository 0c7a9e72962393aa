"""The render-quality gate: every render path against a full-decode + Lanczos reference (SSIM, tests/quality.py).

    direct         the original (or the HEIC master) through libvips' thumbnail_buffer
    intermediate   the intermediate ingest makes from the validation decode, through
                   sources.load_intermediate (chosen shrink-on-load, then a resize)

For every photo, size and format: both paths give the same dimensions; the direct render
scores at least FLOOR against the reference; the intermediate render loses at most
MAX_LOSS against the direct one (it may be better: libvips' own shrink-on-load for the
original leaves as little as 1.0x for the final resize).
"""
from __future__ import annotations

import io
from pathlib import Path

import pytest
import pyvips

from origin.config import Settings
from origin.ingest import originals
from origin.ingest.validate import Limits, validate
from origin.pipeline import sources
from origin.pipeline.render import Encoding, RenderOptions, render
from tests import images, quality

MAX_LOSS = 0.005
FLOOR = 0.85  # the encoders' own loss at the default qualities (AVIF q55 on the elephants' skin: 0.89)
ENCODING = Encoding()
PHONE_PHOTO = Path("/usr/share/backgrounds/Dragonfly_by_Bolly.jpg")  # 4224 x 3168, lomiri-wallpapers-16.04
ALPHA_PICTURE = images.PHOTO_DIR / "abstract" / "Arc-Colors-Transparent-Wallpaper.png"  # 2140 x 1200 RGBA


def portrait_phone_photo() -> bytes:
    """12 MP stored landscape with EXIF orientation 6: displayed 3000 x 4000, as phones write them."""
    photo = pyvips.Image.thumbnail(str(PHONE_PHOTO), 4000, height=3000, crop="centre").copy()
    photo.set_type(pyvips.GValue.gint_type, "orientation", 6)
    return photo.jpegsave_buffer(Q=92, keep="exif")


def heic_photo() -> bytes:
    import pillow_heif
    from PIL import Image

    photo = pyvips.Image.thumbnail(str(PHONE_PHOTO), 1600)
    out = io.BytesIO()
    pillow_heif.from_pillow(Image.open(io.BytesIO(photo.jpegsave_buffer(Q=95)))).save(out, format="HEIF", quality=90)
    return out.getvalue()


def made_at_ingest(data: bytes, sizes: tuple) -> tuple[originals.Decoded, str]:
    """What the worker stores: validation's decode turned into the intermediates (originals.prepare)."""
    checked = validate(data, Limits(), decode=not originals.gets_master(data), decode_box=originals.decode_box(sizes))
    decoded = originals.prepare(data, checked.fmt, sizes, checked.decoded)
    return decoded, checked.fmt


LADDER = Settings().intermediate_sizes  # the default IMAGEHOST_INTERMEDIATE_SIZES
CASES = {
    # name: (bytes, intermediate sizes, [(kind, size, formats)])
    "camera-16MB": (lambda: images.BIG_PHOTO.read_bytes(), LADDER,
                    [("w", 150, ("webp",)), ("w", 300, ("jpeg",)), ("w", 600, ("webp", "jpeg")),
                     ("w", 1200, ("webp", "avif")), ("w", 2400, ("webp", "jpeg")), ("sq", 150, ("webp",))]),
    "phone-12MP-portrait": (portrait_phone_photo, LADDER,
                            [("w", 150, ("jpeg",)), ("w", 600, ("webp",)), ("w", 1200, ("jpeg", "webp")),
                             ("sq", 64, ("webp",)), ("sq", 300, ("avif",))]),
    "alpha-png": (lambda: ALPHA_PICTURE.read_bytes(), (300, 1000),
                  [("w", 300, ("webp", "png")), ("w", 600, ("avif",)), ("sq", 150, ("webp",))]),
    "heic-master": (heic_photo, (600,), [("w", 150, ("jpeg",)), ("w", 300, ("webp",)), ("sq", 150, ("webp",))]),
}


def _full_decode(data: bytes, fmt: str) -> pyvips.Image:
    if fmt == "heic":
        import pillow_heif

        return sources.from_pillow(pillow_heif.open_heif(io.BytesIO(data)).to_pillow()).copy_memory()
    return quality.full_decode(data)


@pytest.mark.parametrize("case", list(CASES))
def test_renders_from_the_intermediate_lose_nothing_visible(case):
    make, size, renders = CASES[case]
    data = make()
    decoded, fmt = made_at_ingest(data, size)
    header = decoded.header
    assert decoded.intermediates, "the picture is large enough to get intermediates"
    original = decoded.master or data
    full = _full_decode(data, fmt)
    assert (full.width, full.height) == (header.width, header.height)
    pic = sources.Picture("content1", fmt, header.width, header.height, header.has_alpha, 1)
    failures = []
    for kind, side, formats in renders:
        for out in formats:
            opts = RenderOptions(kind, side, out, header.width, header.height)
            source = sources.choose(pic, opts, size)[0]
            assert source.kind == "intermediate", f"{kind}{side} is served by an intermediate"
            direct = render(original, opts, ENCODING)
            mine = render(decoded.intermediates[source.rung], opts, ENCODING, sources.load_intermediate)
            dims = images.size(direct)
            assert images.size(mine) == dims, f"{kind}{side}.{out}: the same dimensions from either source"
            ref = quality.reference(full, *dims, crop="centre" if kind == "sq" else None)
            s_direct, s_mine = quality.score(direct, ref), quality.score(mine, ref)
            line = f"{case} {kind}{side}.{out}: direct {s_direct:.4f}, {source.key.rpartition('/')[2]} {s_mine:.4f}"
            print(line)
            if s_direct < FLOOR or s_mine < s_direct - MAX_LOSS:
                failures.append(line)
    assert not failures, failures


def test_the_intermediate_is_upright_and_keeps_only_its_icc_profile():
    data = portrait_phone_photo()
    decoded, _ = made_at_ingest(data, LADDER)
    assert {rung: images.size(blob) for rung, blob in decoded.intermediates.items()} == {
        None: (1800, 2400), 1200: (900, 1200)}  # 3000 x 4000 upright
    for blob in decoded.intermediates.values():
        assert images.metadata_fields(blob) == []
        assert pyvips.Image.new_from_buffer(blob, "").get("vips-loader") == "jpegload_buffer"
    icc = images.BIG_PHOTO.read_bytes()
    with_icc, _ = made_at_ingest(icc, LADDER)
    source_has = pyvips.Image.new_from_buffer(icc, "").get_typeof("icc-profile-data") != 0
    for blob in with_icc.intermediates.values():
        assert (pyvips.Image.new_from_buffer(blob, "").get_typeof("icc-profile-data") != 0) == source_has


def test_the_shrink_on_load_leaves_room_for_the_resize():
    # 2400 -> w600 is an exact 1/4 JPEG shrink: not taken, nor 1/2 (2x left); 3x must remain
    assert sources.jpeg_shrink(2400 / 600) == 1
    assert sources.jpeg_shrink(2400 / 300) == 2
    assert sources.jpeg_shrink(2400 / 150) == 4
    assert sources.jpeg_shrink(2400 / 64) == 8
    assert sources.jpeg_shrink(2400 / 1200) == 1
