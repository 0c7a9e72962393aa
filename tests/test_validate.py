"""Upload validation: size, magic bytes, header limits (without decoding), then a full decode."""
from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zlib

import pytest
import pyvips
from PIL import Image

from origin.config import Settings
from origin.ingest.validate import REASONS, Limits, Rejected, Validated, validate
from tests import images

LIMITS = Limits()


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header(width: int, height: int, color_type: int = 2) -> bytes:
    """A PNG that declares width x height, with a tiny IDAT: a decoder would allocate the lot."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real JPEG whose SOF0 is rewritten to declare another size."""
    data = bytearray(images.jpeg())
    at = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


def gif_declaring(width: int, height: int) -> bytes:
    data = bytearray(images.animated_gif(frames=2))
    struct.pack_into("<HH", data, 6, width, height)
    return bytes(data)


def webp_canvas(width: int, height: int) -> bytes:
    vp8x = bytes([0x10, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + b"VP8X" + struct.pack("<I", 10) + vp8x + b"VP8 " + struct.pack("<I", 10) + bytes(10)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def heif_with_ispe(data: bytes, width: int, height: int) -> bytes:
    """Rewrite every ispe (image spatial extents) box of a HEIF/AVIF file."""
    out = bytearray(data)
    at = out.find(b"ispe")
    assert at > 0
    while at > 0:
        struct.pack_into(">II", out, at + 8, width, height)
        at = out.find(b"ispe", at + 4)
    return bytes(out)


def vips(data: bytes, **kw) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "", **kw)


def avif(data: bytes | None = None) -> bytes:
    return vips(data or images.jpeg()).heifsave_buffer(compression="av1", Q=50)


def rejected(data: bytes, limits: Limits = LIMITS, **kw) -> Rejected:
    with pytest.raises(Rejected) as info:
        validate(data, limits, **kw)
    assert info.value.reason in REASONS and info.value.code == info.value.reason
    return info.value


# --- each reason -------------------------------------------------------------------------------

def test_wrong_magic_bytes_are_unsupported_whatever_the_name_says():
    err = rejected(b"MZ\x90\x00" + b"\0" * 4000, declared_type="image/jpeg", filename="photo.jpg")
    assert err.reason == "unsupported_type"
    assert rejected(b"").reason == "unsupported_type"
    assert rejected(b"<svg xmlns='http://www.w3.org/2000/svg'/>").reason == "unsupported_type"


def test_over_the_size_limit_is_too_large_before_anything_else():
    data = images.jpeg() + b"\0" * (21 * 1024 * 1024)
    err = rejected(data)
    assert err.reason == "too_large" and err.details["limit"] == 20 * 1024 * 1024
    assert rejected(b"MZ" + bytes(21 * 1024 * 1024)).reason == "too_large"  # size comes before type


@pytest.mark.parametrize("make", [
    lambda: png_header(50_000, 50_000),
    lambda: jpeg_declaring(60_000, 60_000),
    lambda: gif_declaring(65_535, 65_535),
    lambda: webp_canvas(16_384, 16_384),
    lambda: heif_with_ispe(images.hevc_heic(64, 64), 50_000, 50_000),
    lambda: heif_with_ispe(avif(), 50_000, 50_000),
    lambda: images.jxl_declaring(50_000, 50_000),
], ids=["png", "jpeg", "gif", "webp", "heic", "avif", "jxl"])
def test_a_pixel_bomb_is_refused_without_decoding(make):
    data = make()
    validate(images.jpeg(), LIMITS)  # warm up imports and libvips
    tracemalloc.start()
    start = time.perf_counter()
    err = rejected(data)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert err.reason in ("too_many_pixels", "side_too_long"), err.message
    # a few ms here; decoding 2.5 Gpx would take a minute: the bound leaves room for a busy machine
    assert elapsed < 0.5, f"{elapsed * 1000:.1f} ms"
    assert peak < 1_000_000  # nothing near 50k x 50k was allocated


def test_the_50k_png_is_too_many_pixels():
    assert rejected(png_header(50_000, 50_000)).reason == "too_many_pixels"


def test_a_side_over_the_limit():
    err = rejected(png_header(20_000, 10))
    assert err.reason == "side_too_long" and err.details["limit"] == 16_384
    assert rejected(png_header(10, 20_000)).reason == "side_too_long"


def test_too_many_frames():
    limits = Limits(max_frames=5)
    assert validate(images.animated_gif(frames=5), limits).frames == 5
    assert rejected(images.animated_gif(frames=6), limits).reason == "too_many_frames"
    webp = vips(images.animated_gif(frames=6), n=-1).webpsave_buffer()
    assert rejected(webp, limits).reason == "too_many_frames"


def test_an_animation_counts_every_frame_against_the_pixel_limit():
    limits = Limits(max_pixels=240 * 160 * 5)
    assert validate(images.animated_gif(frames=5), limits).frames == 5
    err = rejected(images.animated_gif(frames=6), limits)
    assert err.reason == "too_many_pixels" and "6 frames" in err.message


def test_a_truncated_jpeg_is_corrupt():
    err = rejected(images.jpeg()[:3000])
    assert err.reason == "corrupt" and "premature end" in err.message.lower()


@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n" + b"\0" * 40,
    b"\xff\xd8\xff\xe0" + b"\0" * 40,
    b"\xff\xd8\xff\xd9",
    b"GIF89a\x10\x00\x10\x00\x00\x00\x00\x99",
    b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\0" * 20,
    b"\x00\x00\x00\x14ftypavif\x00\x00\x00\x00avif",
    png_header(0, 100),
    png_header(100, 100),  # a header in limits, but the IDAT does not hold 100 x 100 pixels
], ids=["png-ihdr", "jpeg-nosof", "jpeg-eoi", "gif-block", "webp-vp8", "avif-nometa", "png-zero", "png-short"])
def test_broken_headers_and_data_are_corrupt(data):
    assert rejected(data).reason == "corrupt"


def valid_samples() -> dict[str, bytes]:
    return {
        "jpeg": images.jpeg(), "png": images.png_with_alpha(), "gif": images.animated_gif(),
        "webp": vips(images.jpeg()).webpsave_buffer(), "heic": images.hevc_heic(320, 240), "avif": avif(),
        "jxl": images.jxl(320, 240), "jxl container": images.jxl_from_jpeg(images.jpeg()),
    }


def test_truncated_or_damaged_files_are_always_rejected_never_crash():
    for fmt, data in valid_samples().items():
        for cut in (20, 40, 64, 100, 200, len(data) // 2, len(data) - 40):
            try:
                validate(data[:cut], LIMITS)
            except Rejected as exc:
                assert exc.reason in ("corrupt", "unsupported_type"), (fmt, cut, exc.message)
            else:
                pytest.fail(f"{fmt} cut at {cut} of {len(data)} bytes passed")
        for at in range(12, 120, 7):  # damage the header area, one byte at a time
            damaged = bytearray(data)
            damaged[at] ^= 0xFF
            try:
                validate(bytes(damaged), LIMITS)
            except Rejected:
                pass


# --- valid images of each type ------------------------------------------------------------------

@pytest.mark.parametrize("fmt, make, expected", [
    ("jpeg", lambda: images.jpeg(), (640, 480, 1, False)),
    ("jpeg", lambda: images.rotated_jpeg(), (400, 200, 1, False)),  # coded size; orientation is not applied
    ("png", lambda: images.png_with_alpha(), (300, 200, 1, True)),
    ("png", lambda: vips(images.jpeg()).pngsave_buffer(), (640, 480, 1, False)),
    ("gif", lambda: images.animated_gif(frames=7), (240, 160, 7, True)),
    ("webp", lambda: vips(images.jpeg()).webpsave_buffer(), (640, 480, 1, False)),
    ("webp", lambda: vips(images.jpeg()).webpsave_buffer(lossless=True), (640, 480, 1, False)),
    ("webp", lambda: vips(images.png_with_alpha()).webpsave_buffer(), (300, 200, 1, True)),
    ("webp", lambda: vips(images.animated_gif(frames=4), n=-1).webpsave_buffer(), (240, 160, 4, False)),
    ("heic", lambda: images.hevc_heic(), (640, 480, 1, False)),
    ("avif", lambda: avif(), (640, 480, 1, False)),
    ("avif", lambda: avif(images.png_with_alpha()), (300, 200, 1, True)),
    ("jxl", lambda: images.jxl(), (640, 480, 1, False)),
    ("jxl", lambda: images.jxl(300, 200, alpha=True), (300, 200, 1, True)),
    ("jxl", lambda: images.jxl_from_jpeg(images.jpeg()), (640, 480, 1, False)),  # a container, jxlp boxes
], ids=lambda v: v if isinstance(v, str) else None)
def test_valid_images_give_their_dimensions_and_frames(fmt, make, expected):
    checked = validate(make(), LIMITS)
    assert isinstance(checked, Validated)
    assert checked.fmt == fmt and checked.mismatch is None
    assert (checked.width, checked.height, checked.frames, checked.has_alpha) == expected
    assert checked.mime.startswith("image/")


def test_heic_with_alpha_and_a_phone_sized_heic():
    import pillow_heif

    out = io.BytesIO()
    pillow_heif.from_pillow(Image.open(io.BytesIO(images.png_with_alpha()))).save(out, format="HEIF", quality=80)
    checked = validate(out.getvalue(), LIMITS)
    assert (checked.fmt, checked.width, checked.height, checked.has_alpha) == ("heic", 300, 200, True)
    big = validate(images.hevc_heic(1024, 768), LIMITS)
    assert (big.width, big.height, big.frames) == (1024, 768, 1)


@pytest.mark.parametrize("kind", ["rgb", "rgba", "grey", "grey+alpha", "16-bit", "16-bit rgba", "float",
                                  "animated rgba"])
def test_the_jxl_header_reader_agrees_with_libjxl(kind):
    """Sizes coded every way the SizeHeader has (multiples of 8, each aspect ratio it names, 9 to 30-bit
    sides), and alpha from the first extra channel, against what libjxl decodes."""
    import imagecodecs
    import numpy as np

    shapes = {"rgb": (3,), "rgba": (4,), "grey": (), "grey+alpha": (2,), "16-bit": (3,), "16-bit rgba": (4,),
              "float": (3,), "animated rgba": (4,)}
    dtype = np.uint16 if kind.startswith("16") else np.float32 if kind == "float" else np.uint8
    sizes = [(1, 1), (8, 8), (16, 8), (1920, 1080), (1200, 900), (1200, 800), (1000, 800), (800, 400), (640, 512),
             (7, 300), (257, 255), (4000, 3), (3, 4000), (600, 500), (513, 1025), (9000, 2), (1234, 5)]
    for width, height in sizes:
        pixels = np.zeros(((2,) if kind.startswith("animated") else ()) + (height, width) + shapes[kind], dtype)
        data = bytes(imagecodecs.jpegxl_encode(pixels, level=50, effort=1))
        checked = validate(data, Limits(max_side=10_000), decode=False)
        decoded = imagecodecs.jpegxl_decode(data, index=0)
        alpha = decoded.ndim == 3 and decoded.shape[2] in (2, 4)
        assert (checked.width, checked.height, checked.has_alpha) == (decoded.shape[1], decoded.shape[0], alpha), \
            (kind, width, height)


def test_apng_frames_come_from_its_header():
    frames = [Image.new("RGB", (50, 40), (i * 40, 0, 0)) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "PNG", save_all=True, append_images=frames[1:])
    checked = validate(out.getvalue(), LIMITS)
    assert (checked.fmt, checked.width, checked.height, checked.frames) == ("png", 50, 40, 3)


def test_real_photos_validate():
    for path in images.PHOTOS + [images.BIG_PHOTO]:
        checked = validate(path.read_bytes(), LIMITS)
        assert checked.fmt == "jpeg" and checked.width * checked.height == images.size(path.read_bytes())[0] * \
            images.size(path.read_bytes())[1]


# --- declared type and name ---------------------------------------------------------------------

def test_a_declared_type_or_name_that_differs_is_noted_not_trusted():
    jpeg = images.jpeg()
    note = validate(jpeg, LIMITS, declared_type="image/png").mismatch
    assert note == "declared type image/png but the content is jpeg"
    note = validate(jpeg, LIMITS, filename="holiday.PNG").mismatch
    assert note == "file name ends in .png but the content is jpeg"
    both = validate(jpeg, LIMITS, declared_type="image/gif", filename="x.webp").mismatch
    assert "image/gif" in both and ".webp" in both
    assert validate(jpeg, LIMITS, declared_type="image/jpeg", filename="a.JPG").mismatch is None
    assert validate(jpeg, LIMITS, declared_type="image/jpg; charset=binary", filename="a.jpeg").mismatch is None
    assert validate(jpeg, LIMITS, declared_type="application/octet-stream", filename="noext").mismatch is None
    assert validate(images.hevc_heic(64, 64), LIMITS, declared_type="image/heif", filename="IMG_1.HEIC").mismatch is None
    assert validate(images.jxl(64, 64), LIMITS, declared_type="image/jxl", filename="a.jxl").mismatch is None


def test_limits_come_from_settings_and_reasons_are_closed():
    settings = Settings(max_upload_bytes=1000, max_pixels=2000, max_side=300, max_frames=4)
    assert Limits.from_settings(settings) == Limits(1000, 2000, 300, 4)
    assert Limits.from_settings(Settings()) == LIMITS
    with pytest.raises(ValueError):
        Rejected("bad_reason", "x")
    assert Rejected("malware", "found X").reason == "malware"
