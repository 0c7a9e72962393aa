"""Test images, generated in code (plus Debian's mate-backgrounds photos)."""
from __future__ import annotations

import io
from pathlib import Path

import pyvips
from PIL import Image, ImageDraw

PHOTO_DIR = Path("/usr/share/backgrounds/mate")
BIG_PHOTO = PHOTO_DIR / "abstract" / "Elephants_5640x3172.jpg"
PHOTOS = [PHOTO_DIR / "nature" / name for name in ("Aqua.jpg", "Garden.jpg", "LadyBird.jpg")]

GPS_TAG = 0x8825
ORIENTATION_TAG = 0x0112


def scene(width: int = 640, height: int = 480) -> Image.Image:
    """A picture with structure: a gradient, a bright disc off-centre, some bars."""
    grad = pyvips.Image.xyz(width, height)
    r = (grad[0] * 255 / max(1, width - 1)).cast("uchar")
    g = (grad[1] * 255 / max(1, height - 1)).cast("uchar")
    b = ((grad[0] + grad[1]) * 127 / max(1, width + height)).cast("uchar")
    base = r.bandjoin([g, b]).copy(interpretation="srgb")
    image = Image.frombytes("RGB", (width, height), base.write_to_memory())
    draw = ImageDraw.Draw(image)
    draw.ellipse((width * 0.65, height * 0.2, width * 0.9, height * 0.55), fill=(250, 250, 40))
    for i in range(0, width, 40):
        draw.rectangle((i, height - 30, i + 15, height), fill=(20, 20, 20))
    return image


def jpeg(image: Image.Image | None = None, exif: Image.Exif | None = None, quality: int = 90) -> bytes:
    out = io.BytesIO()
    (image or scene()).save(out, "JPEG", quality=quality, exif=exif if exif is not None else Image.Exif())
    return out.getvalue()


def png_with_alpha(width: int = 300, height: int = 200) -> bytes:
    image = scene(width, height).convert("RGBA")
    alpha = Image.new("L", (width, height), 0)
    ImageDraw.Draw(alpha).ellipse((20, 20, width - 20, height - 20), fill=255)
    image.putalpha(alpha)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def animated_gif(frames: int = 6, width: int = 240, height: int = 160) -> bytes:
    images = []
    for i in range(frames):
        frame = Image.new("RGB", (width, height), (30, 30, 30))
        left = (i * 30) % max(1, width - 50)
        ImageDraw.Draw(frame).rectangle((left, 40, left + 50, 110), fill=(255, 40 * i % 256, 7 * i % 256))
        images.append(frame)
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=80, loop=0)
    return out.getvalue()


def rotated_jpeg() -> bytes:
    """Stored 400×200 (landscape) with EXIF orientation 6: displayed 200×400 (portrait)."""
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6
    image = Image.new("RGB", (400, 200), (0, 0, 255))
    ImageDraw.Draw(image).rectangle((0, 0, 199, 199), fill=(255, 0, 0))  # red left half
    return jpeg(image, exif)


def gps_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "ImagehostCam"  # Make
    exif[0xA431] = "SERIAL-123456"  # BodySerialNumber (lives in the Exif IFD)
    gps = exif.get_ifd(GPS_TAG)
    gps.update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)})
    return jpeg(scene(), exif)


def hevc_heic(width: int = 640, height: int = 480) -> bytes:
    import pillow_heif

    out = io.BytesIO()
    pillow_heif.from_pillow(scene(width, height)).save(out, format="HEIF", quality=85)
    return out.getvalue()


def big_jpeg(megapixels: int = 50) -> bytes:
    """A large JPEG made by libvips (noise over a gradient compresses like a photo)."""
    side = int((megapixels * 1_000_000 * 4 / 3) ** 0.5)
    width, height = side, side * 3 // 4
    noise = pyvips.Image.gaussnoise(width, height, sigma=30, mean=128)
    image = noise.bandjoin([noise.rot180(), noise.fliphor()]).cast("uchar").copy(interpretation="srgb")
    return image.jpegsave_buffer(Q=85)


def has_gps(data: bytes) -> bool:
    image = pyvips.Image.new_from_buffer(data, "")
    if any(name.startswith("exif-ifd3") for name in image.get_fields()):
        return True
    return image.get_typeof("exif-data") != 0 and b"GPS" in image.get("exif-data")


def metadata_fields(data: bytes) -> list[str]:
    image = pyvips.Image.new_from_buffer(data, "")
    return [n for n in image.get_fields() if n.startswith(("exif", "xmp", "iptc"))]


def frames(data: bytes) -> int:
    image = pyvips.Image.new_from_buffer(data, "", n=-1)
    return image.get("n-pages") if image.get_typeof("n-pages") else 1


def size(data: bytes) -> tuple[int, int]:
    image = pyvips.Image.new_from_buffer(data, "")
    return image.width, image.height


def pixel(data: bytes, x: int, y: int) -> list[float]:
    return pyvips.Image.new_from_buffer(data, "").getpoint(x, y)


def jxl(width: int = 640, height: int = 480, alpha: bool = False) -> bytes:
    """The scene as a JPEG XL codestream (libjxl through imagecodecs); with alpha, png_with_alpha's picture."""
    import imagecodecs
    import numpy as np

    picture = Image.open(io.BytesIO(png_with_alpha(width, height))) if alpha else scene(width, height)
    return bytes(imagecodecs.jpegxl_encode(np.asarray(picture), level=90, effort=3))


def jxl_from_jpeg(data: bytes) -> bytes:
    """libjxl's lossless recompression of a JPEG: a container with jxlp codestream boxes, the JPEG
    reconstruction data and the JPEG's Exif, Brotli-compressed in a brob box."""
    import imagecodecs

    return bytes(imagecodecs.jpegxl_encode_jpeg(data))


def jxl_declaring(width: int, height: int) -> bytes:
    """A JPEG XL codestream whose SizeHeader declares width x height (30-bit sides), then junk."""
    fields = [(0, 1), (3, 2), (height - 1, 30), (0, 3), (3, 2), (width - 1, 30), (1, 1)]  # ..., all_default
    value, pos = 0, 0
    for field, bits in fields:
        value, pos = value | field << pos, pos + bits
    return b"\xff\x0a" + value.to_bytes((pos + 7) // 8, "little") + b"\0" * 200
