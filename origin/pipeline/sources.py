"""Render sources: which stored picture a render starts from, and the intermediate itself.

    original       the upload, or the decoded HEIC master: full size. The only source of
                   /original, and of the sizes the intermediate cannot serve
    intermediates  a ladder of smaller copies, one per IMAGEHOST_INTERMEDIATE_SIZES long side
                   (default 2400 and 1200): images/{content}/intermediate.{jpg|png} for the
                   largest size, intermediate.{size}.{jpg|png} for the others (keys.intermediate_key).
                   Upright, metadata-free but the ICC profile, JPEG q97 4:4:4 (PNG when the
                   picture has alpha). Made at ingest from the validation decode (the one decode
                   of the original; each smaller rung from the larger one's pixels), else on the
                   first miss that needs one, or by `imagehost compact`. Never evicted.

Rules (each checked by tests/test_render_quality.py against a full-decode + Lanczos reference):

  * A rung is kept only where it pays: a still picture, and at most half the pixels of the
    next larger source (the original, or the rung above). A source not much larger decodes
    about as fast (a q97 copy can have more bytes than the upload). Decoding is bound by the
    entropy-coded bytes: a 2400-px q97 copy of a 12 MP phone photo is 3.6 MB, its 1200-px
    rung 1 MB, so w150-w1200 come from the small rung and only w2400 from the large one.
  * A render starts from the smallest stored source at least as large as its output: a
    rung serves a width up to its own width (a pure re-encode at that width loses at most
    0.0024 SSIM at q97) and a square up to its short side; a preset's box needs what the box
    scales the picture to (fit: its width; fill: the cover scale, both sides of the box);
    a source is never upscaled.
  * From a JPEG intermediate, shrink-on-load leaves at least HEADROOM (3x) for the resize
    that follows. libjpeg's DCT-domain shrink is close to a box filter: an exact 1/4 shrink
    of a 2400-px intermediate to w600 loses sharpness a Lanczos resize keeps.
  * Output dimensions come from the original's, so a variant has the same size whichever
    source rendered it.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyvips

from origin import keys
from origin.formats import BY_MIME, NEEDS_MASTER
from origin.pipeline.render import RenderOptions

MIN_PIXEL_RATIO = 2.0  # an intermediate has at most 1/2 of the original's pixels
HEADROOM = 3.0  # at least this much resize left after a JPEG shrink-on-load
JPEG_SHRINKS = (8, 4, 2)
JPEG_QUALITY = 97  # 4:4:4; at q95 a w2400 WebP re-encoded from a 2400-px intermediate lost 0.006 SSIM, at q97 0.0024


@dataclass(frozen=True)
class Picture:
    """What decides a content's sources: its facts in the catalog (display size, after EXIF rotation)."""
    content: str
    fmt: str  # the upload's format name
    width: int
    height: int
    has_alpha: bool
    pages: int

    @classmethod
    def of(cls, record) -> "Picture":
        """From a served ImageRecord (its content's facts)."""
        return cls(record.content, BY_MIME[record.content_type].name, record.width, record.height,
                   record.has_alpha, record.pages)

    @classmethod
    def of_content(cls, content) -> "Picture":
        return cls(content.id, BY_MIME[content.content_type].name, content.width, content.height,
                   content.has_alpha, content.pages)


@dataclass(frozen=True)
class Source:
    key: str
    kind: str  # original | intermediate
    width: int
    height: int
    rung: int | None = None  # an intermediate's key suffix (keys.intermediate_key): None for the largest


def original(pic: Picture) -> Source:
    key = keys.master_key(pic.content, pic.has_alpha) if pic.fmt in NEEDS_MASTER else keys.source_key(
        pic.content, pic.fmt)
    return Source(key, "original", pic.width, pic.height)


def ladder(sizes: tuple[int, ...], width: int, height: int, pages: int) -> list[int]:
    """The rungs (long sides) a picture gets, largest first: each at most 1/MIN_PIXEL_RATIO of the
    pixels of the source above it; none for an animation."""
    rungs, above = [], width * height
    for size in sorted(sizes, reverse=True):
        if pages > 1 or size >= max(width, height):
            continue
        scale = size / max(width, height)
        pixels = (width * scale) * (height * scale)
        if pixels * MIN_PIXEL_RATIO <= above:
            rungs.append(size)
            above = pixels
    return rungs


def intermediate_box(sizes: tuple[int, ...], width: int, height: int, pages: int) -> int | None:
    """The long side the one decode at ingest goes to (the largest rung), or None: no intermediate."""
    rungs = ladder(sizes, width, height, pages)
    return rungs[0] if rungs else None


def intermediates(pic: Picture, sizes: tuple[int, ...]) -> list[Source]:
    """The intermediates this picture has (or gets on its first miss), smallest first."""
    out = []
    for size in ladder(sizes, pic.width, pic.height, pic.pages):
        scale = size / max(pic.width, pic.height)
        width, height = max(1, round(pic.width * scale)), max(1, round(pic.height * scale))
        rung = None if size == max(sizes) else size
        out.append(Source(keys.intermediate_key(pic.content, pic.has_alpha, rung), "intermediate", width, height, rung))
    return out[::-1]


def serves(source: Source, opts: RenderOptions) -> bool:
    if source.kind == "original":
        return True
    if opts.kind == "w":
        return min(opts.size, opts.source_width) <= source.width
    if opts.kind in ("sq", "sm"):
        return opts.size <= min(source.width, source.height)
    if opts.kind == "fit":
        return opts.box[0] <= source.width
    if opts.kind == "fill":
        width, height = opts.box
        return width <= source.width and height <= source.height
    return False  # the full-size original


def choose(pic: Picture, opts: RenderOptions, sizes: tuple[int, ...]) -> list[Source]:
    """The sources that can serve `opts`, smallest first (the original last, always)."""
    chosen = [s for s in intermediates(pic, sizes) if not opts.animated and serves(s, opts)]
    return chosen + [original(pic)]


# --------------------------------------------------------------------- making it


def decode_upright(data: bytes, box: int, option_string: str = "") -> pyvips.Image:
    """One decode of an original into memory: upright, its long side brought down to `box`."""
    image = pyvips.Image.thumbnail_buffer(data, box, height=box, size="down", option_string=option_string)
    return image.copy_memory()


def from_pillow(image) -> pyvips.Image:
    """A decoded Pillow image (the HEIC master's) as a libvips image, its ICC profile kept."""
    bands = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}
    if image.mode not in bands:
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    out = pyvips.Image.new_from_memory(image.tobytes(), image.width, image.height, bands[image.mode], "uchar")
    out = out.copy(interpretation="b-w" if bands[image.mode] <= 2 else "srgb")
    icc = image.info.get("icc_profile")
    if icc:
        out.set_type(pyvips.GValue.blob_type, "icc-profile-data", icc)
    return out


def encode(image: pyvips.Image, has_alpha: bool) -> bytes:
    """The intermediate's bytes: JPEG q97 4:4:4, or PNG (fast zlib) with alpha; ICC kept, nothing else."""
    if image.interpretation == "cmyk":
        image = image.icc_transform("srgb", embedded=True, input_profile="cmyk")
    if has_alpha:
        return image.pngsave_buffer(compression=1, keep="icc")
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    return image.jpegsave_buffer(Q=JPEG_QUALITY, subsample_mode="off", optimize_coding=True, keep="icc")


def rungs(upright: pyvips.Image, pic: Picture, sizes: tuple[int, ...]) -> dict[int | None, bytes]:
    """{rung: bytes} of every intermediate of `pic` (Source.rung), from one upright decode at least
    as large as the largest rung: each rung resized from the one above it, in memory."""
    out = {}
    image = upright
    for source in reversed(intermediates(pic, sizes)):
        long_side = max(source.width, source.height)
        if max(image.width, image.height) > long_side:
            image = image.thumbnail_image(long_side, height=long_side, size="down").copy_memory()
        out[source.rung] = encode(image, pic.has_alpha)
    return out


def make(render_source: bytes, pic: Picture, sizes: tuple[int, ...]) -> dict[int | None, bytes]:
    """Every intermediate of a stored picture from its original's bytes (a first miss, compaction)."""
    box = intermediate_box(sizes, pic.width, pic.height, pic.pages)
    if box is None:
        return {}
    return rungs(decode_upright(render_source, box), pic, sizes)


def mime(pic: Picture) -> str:
    return "image/png" if pic.has_alpha else "image/jpeg"


# --------------------------------------------------------------------- rendering from it


def output_size(opts: RenderOptions) -> tuple[int, int]:
    """A w (or fit) variant's dimensions, from the original's: what thumbnail_buffer gives the direct render."""
    width = min(opts.box[0] if opts.kind == "fit" else opts.size, opts.source_width)
    return width, max(1, int(opts.source_height * width / opts.source_width + 0.5))


def jpeg_shrink(factor: float) -> int:
    """The largest libjpeg shrink that leaves HEADROOM of the resize `factor` for Lanczos."""
    return next((s for s in JPEG_SHRINKS if factor / s >= HEADROOM), 1)


def load_intermediate(data: bytes, opts: RenderOptions) -> pyvips.Image:
    """The `load` step of a render that starts from an intermediate (render.render's loader)."""
    head = pyvips.Image.new_from_buffer(data, "")
    is_jpeg = head.get("vips-loader").startswith("jpegload")
    if opts.kind in ("w", "fit"):
        width, height = output_size(opts)
        factor = head.width / width
    else:
        width, height = opts.crop_size
        factor = min(head.width / width, head.height / height)
    options = {"shrink": jpeg_shrink(factor)} if is_jpeg and jpeg_shrink(factor) > 1 else {}
    if opts.kind in ("w", "fit"):
        image = pyvips.Image.new_from_buffer(data, "", access="sequential", **options)
        return image.thumbnail_image(width, height=height, size="force")
    image = pyvips.Image.new_from_buffer(data, "", **options)
    return image.thumbnail_image(width, height=height, size="down", crop=opts.interesting)

