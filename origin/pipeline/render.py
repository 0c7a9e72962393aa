"""Render: options → bytes, with libvips only.

A render is a short list of named steps, each a plain function from image to
image (the last one, `encode`, to bytes):

    load      thumbnail_buffer: shrink-on-load, EXIF auto-rotate, never upscale; a fit box
              renders at the width that fits it, a fill box is covered and cut (centre or smart)
    crop      square and fill crops that keep every frame of an animation
    colour    CMYK and other spaces to sRGB, alpha flattened for formats without it, an
              embedded profile that only says sRGB left out (origin/pipeline/profiles.py)
    encode    the output format, metadata stripped but for the ICC profile (JPEG XL: converted
              to sRGB, origin/pipeline/jxl.py)

`thumbnail_buffer` lets the JPEG, WebP and HEIF loaders decode at a fraction of
full size, so a 50-megapixel JPEG is never decoded whole for a w300 variant.
"""
from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass, replace

import pyvips

from origin.errors import RenderFailed
from origin.formats import FORMATS
from origin.pipeline import jxl, profiles
from origin.presets import Preset, box_size

HUGE = 10_000_000  # "no limit" on one side of a thumbnail box
# libjpeg's optimised Huffman tables need every coefficient in memory: above this
# many pixels (full-size originals of big photos) the default tables are used
OPTIMIZE_CODING_MAX_PIXELS = 12_000_000


M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # glibc mallopt parameters


def threads_per_render(configured: int, concurrent: int, cores: int | None = None) -> int:
    """libvips threads for one render when `concurrent` renders already share the machine's cores
    (unless `configured`).

    A render's own thread pool only pays while cores would otherwise idle: with as many renders
    in flight as cores, one thread each renders 18 % more images a second than libvips' default
    of one per core (48 renders from a 1200-px intermediate, 4 at a time, 2 cores: 63.5 and 58.8
    against 52.4 and 50.1 img/s), as their pools no longer fight over the cores."""
    if configured > 0:  # IMAGEHOST_VIPS_THREADS
        return configured
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, concurrent))


def configure_libvips(threads: int = 0) -> None:
    """Once per process that renders, before its threads start.

    `threads` > 0: libvips threads per render (threads_per_render); 0 leaves libvips' default.

    libvips' operation cache would hold the last 100 operations and their
    multi-megabyte source buffers, and never hit (every render starts from other
    bytes): it is turned off. glibc gets two arenas, and buffers of 4 MB and more
    are mapped and unmapped, so a source's memory goes back to the system when a
    render ends instead of staying in a thread's arena."""
    pyvips.cache_set_max(0)
    if threads > 0:
        pyvips.concurrency_set(threads)
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return
    libc.mallopt(M_ARENA_MAX, 2)
    libc.mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024)


# JPEG at effort 1 (libvips' mozjpeg options): trellis quantisation, mozjpeg's scan search over
# progressive scripts, the Annex K quantisation table and 4:2:0 at every quality. At equal SSIM
# (loadtest/bench_equal_ssim.py, 10 photos) 5.2 % fewer bytes than effort 0 at w300, 7.8 % at w600,
# 11.0 % at w1200, for about 8x the encode time. Under trellis, mozjpeg's table 2 (tuned for MS-SSIM)
# makes smaller files at the same Q but scores lower: 0.3-1.5 % fewer bytes at equal SSIM
JPEG_EFFORT_1 = dict(optimize_coding=True, trellis_quant=True, quant_table=0, optimize_scans=True, interlace=True,
                     overshoot_deringing=True, subsample_mode="on")

# WebP's deblocking filter strength chosen per picture by libwebp (its autofilter) instead of one for
# every picture: at equal SSIM (loadtest/bench_equal_ssim.py --format webp, 10 photos) 6.0 % fewer
# bytes at w300, 3.6 % at w600, 3.0 % at w1200, for WEBP_DEBLOCK_COST times the encode time
WEBP_DEBLOCK_COST = 5.8


@dataclass(frozen=True)
class Encoding:
    jpeg_quality: int = 82
    webp_quality: int = 80
    avif_quality: int = 55
    avif_effort: int = 2
    webp_effort: int = 4
    jxl_quality: int = 75
    jxl_effort: int = jxl.EFFORT
    jpeg_effort: int = 0  # 0: optimised Huffman tables; 1: JPEG_EFFORT_1 (mozjpeg's trellis and scan search)
    webp_deblock: bool = False  # libwebp's autofilter (libvips' smart_deblock): WEBP_DEBLOCK

    @classmethod
    def from_settings(cls, settings) -> "Encoding":
        return cls(settings.jpeg_quality, settings.webp_quality, settings.avif_quality, settings.avif_effort,
                   settings.webp_effort, settings.jxl_quality, settings.jxl_effort, settings.jpeg_effort,
                   settings.webp_deblock)

    def quality(self, fmt: str) -> int | None:
        return getattr(self, f"{fmt}_quality", None)

    def with_qualities(self, qualities: dict[str, int]) -> "Encoding":
        """The same encoding with the qualities chosen for one picture (origin/pipeline/targeting.py);
        formats it has none for keep the fixed ones."""
        chosen = {f"{fmt}_quality": int(q) for fmt, q in qualities.items() if self.quality(fmt) is not None}
        return replace(self, **chosen) if chosen else self


@dataclass(frozen=True)
class RenderOptions:
    kind: str  # full | w | sq | sm | fit | fill
    size: int  # target width (w, fit, fill), square side (sq, sm), or the source width (full)
    fmt: str  # output format name
    source_width: int  # display dimensions of the source (after EXIF rotation)
    source_height: int
    animated: bool = False  # keep every frame (the source has several, the format animates)
    height: int = 0  # the box's height (fit, fill)
    gravity: str = "centre"  # where a fill box is cut: centre | smart

    @classmethod
    def for_preset(cls, preset: Preset, fmt: str, source_width: int, source_height: int,
                   animated: bool = False) -> "RenderOptions":
        """A preset (origin/presets.py) as render options: width is a w render."""
        if preset.mode == "width":
            return cls("w", preset.width, fmt, source_width, source_height, animated)
        return cls(preset.mode, preset.width, fmt, source_width, source_height, animated, preset.height,
                   preset.gravity or "centre")

    @property
    def box(self) -> tuple[int, int]:
        """The output dimensions of a fit or fill render."""
        return box_size(self.kind, self.size, self.height, self.source_width, self.source_height)

    @property
    def crop_size(self) -> tuple[int, int] | None:
        """What `crop` cuts an animation's frames to (sq, sm, fill); None: no cut."""
        if self.kind in ("sq", "sm"):
            return self.size, self.size
        return self.box if self.kind == "fill" else None

    @property
    def interesting(self) -> str:
        return "attention" if self.kind == "sm" or (self.kind == "fill" and self.gravity == "smart") else "centre"


def render(source: bytes, opts: RenderOptions, encoding: Encoding = Encoding(), loader=None) -> bytes:
    """`loader` replaces the `load` step for sources other than an original (pipeline/sources.py)."""
    try:
        image = (loader or load)(source, opts)
        image = crop(image, opts)
        image = colour(image, opts)
        return encode(image, opts, encoding)
    except pyvips.Error as exc:
        raise RenderFailed(f"could not render: {str(exc).splitlines()[0]}") from exc


def load(source: bytes, opts: RenderOptions) -> pyvips.Image:
    options = "n=-1" if opts.animated else ""
    if opts.kind == "full":
        width, height = opts.source_width, opts.source_height
        return pyvips.Image.thumbnail_buffer(source, width, height=height, size="down", option_string=options)
    if opts.kind == "w":
        return pyvips.Image.thumbnail_buffer(source, opts.size, height=HUGE, size="down", option_string=options)
    if opts.kind == "fit":
        return pyvips.Image.thumbnail_buffer(source, opts.box[0], height=HUGE, size="down", option_string=options)
    width, height = opts.crop_size
    if opts.animated:
        # libvips' own crop flattens an animation to one frame: scale so the
        # box is covered, then `crop` cuts every frame the same way.
        if opts.source_width * height >= opts.source_height * width:
            return pyvips.Image.thumbnail_buffer(source, HUGE, height=height, size="down", option_string=options)
        return pyvips.Image.thumbnail_buffer(source, width, height=HUGE, size="down", option_string=options)
    return pyvips.Image.thumbnail_buffer(source, width, height=height, size="down", crop=opts.interesting)


def crop(image: pyvips.Image, opts: RenderOptions) -> pyvips.Image:
    if opts.crop_size is None or not opts.animated:
        return image
    page_height = _page_height(image)
    width, height = min(opts.crop_size[0], image.width), min(opts.crop_size[1], page_height)
    frames = [image.crop(0, i * page_height, image.width, page_height) for i in range(image.height // page_height)]
    if opts.interesting == "attention":
        # saliency of the first frame decides where every frame is cut
        _, meta = frames[0].smartcrop(width, height, interesting="attention", attention_x=True, attention_y=True)
        left = max(0, min(image.width - width, meta["attention_x"] - width // 2))
        top = max(0, min(page_height - height, meta["attention_y"] - height // 2))
    else:
        left, top = (image.width - width) // 2, (page_height - height) // 2
    out = pyvips.Image.arrayjoin([f.crop(left, top, width, height) for f in frames], across=1)
    out = out.copy()
    for name in ("delay", "loop", "gif-palette"):
        if image.get_typeof(name):
            out.set_type(image.get_typeof(name), name, image.get(name))
    out.set_type(pyvips.GValue.gint_type, "page-height", height)
    return out


def colour(image: pyvips.Image, opts: RenderOptions) -> pyvips.Image:
    if image.interpretation in ("cmyk", "lab", "labs", "lch", "xyz", "scrgb", "hsv"):
        image = image.colourspace("srgb")
    if image.hasalpha() and not FORMATS[opts.fmt].alpha:
        image = image.flatten(background=[255, 255, 255])
    return profiles.without_srgb_profile(image)


def encode(image: pyvips.Image, opts: RenderOptions, enc: Encoding) -> bytes:
    fmt = opts.fmt
    if fmt == "jpeg":
        optimize = image.width * image.height <= OPTIMIZE_CODING_MAX_PIXELS
        if enc.jpeg_effort and optimize:  # progressive scans, like optimised tables, hold every coefficient
            return image.jpegsave_buffer(Q=enc.jpeg_quality, keep="icc", **JPEG_EFFORT_1)
        return image.jpegsave_buffer(Q=enc.jpeg_quality, optimize_coding=optimize, keep="icc")
    if fmt == "webp":
        return image.webpsave_buffer(Q=enc.webp_quality, effort=enc.webp_effort, smart_deblock=enc.webp_deblock,
                                     keep="icc")
    if fmt == "avif":
        return image.heifsave_buffer(
            compression="av1", Q=enc.avif_quality, effort=enc.avif_effort, bitdepth=8, keep="icc"
        )
    if fmt == "jxl":
        return jxl.encode(image, enc.jxl_quality, enc.jxl_effort)
    if fmt == "png":
        return image.pngsave_buffer(compression=6, keep="icc")
    if fmt == "gif":
        return image.gifsave_buffer(keep="icc")
    raise ValueError(f"no encoder for {fmt}")


def _page_height(image: pyvips.Image) -> int:
    if image.get_typeof("page-height"):
        page_height = image.get("page-height")
        if 0 < page_height <= image.height and image.height % page_height == 0:
            return page_height
    return image.height
