"""Deferral: which format answers a negotiated miss now, and which one renders in the background.

A negotiated URL (`/w1200`, no extension) leaves the format to the origin. On a miss, the
format the client prefers (negotiate.choose) is rendered at once when its encode is predicted
to fit IMAGEHOST_MISS_BUDGET_MS. Otherwise the miss is answered with the first format down the
chain that fits, under a short cache lifetime (IMAGEHOST_FALLBACK_MAX_AGE), while the preferred
one renders in the background (single-flight) into the store: the request after the short
lifetime, at the edge or in the browser, gets it for a year.

    chain        AVIF -> WebP -> JPEG (PNG instead of JPEG when the picture has alpha); JPEG XL -> WebP ->
                 JPEG (Safari 17, the browser that names image/jxl, decodes WebP; not every browser
                 that names image/avif decodes JPEG XL, so it is never a fallback for AVIF)
    prediction   output megapixels x the encoder's measured cost per megapixel (COST_MS_PER_MP,
                 measured by loadtest/bench_encoders.py on the 2-core reference machine)

Every browser that names image/avif in Accept also decodes WebP (Chrome 85, Firefox 93 and
Safari 16 shipped AVIF years after WebP), and the edge sends the origin one canonical Accept
per format class, so the fallback is chosen by the class. A URL that names its format
(`/w1200.avif`) always gets that format: it is rendered at once.
"""
from __future__ import annotations

from origin.pipeline.render import WEBP_DEBLOCK_COST, Encoding, RenderOptions

CHAIN = ("avif", "webp", "jpeg")
ALPHA_CHAIN = ("avif", "webp", "png")

# encode milliseconds per output megapixel, by format and effort (loadtest/bench_encoders.py)
COST_MS_PER_MP = {
    "jpeg": {0: 12.0, 1: 94.0},  # effort 1: trellis and scan search, 7.8x effort 0 (bench_encoders --formats jpeg)
    "png": {None: 120.0},
    "jxl": {1: 20.0, 2: 21.0, 3: 30.0, 4: 26.0, 5: 166.0, 6: 287.0, 7: 363.0},
    "webp": {0: 36.0, 1: 55.0, 2: 67.0, 3: 160.0, 4: 135.0, 5: 185.0, 6: 310.0},
    "avif": {0: 52.0, 1: 180.0, 2: 235.0, 3: 430.0, 4: 2800.0, 5: 3500.0, 6: 7300.0, 7: 11300.0, 8: 12000.0,
             9: 30000.0},
}


def output_pixels(opts: RenderOptions) -> int:
    if opts.kind == "w":
        width = min(opts.size, opts.source_width)
        return width * max(1, round(opts.source_height * width / opts.source_width))
    if opts.kind in ("sq", "sm"):
        return min(opts.size, opts.source_width, opts.source_height) ** 2
    if opts.kind in ("fit", "fill"):
        width, height = opts.box
        return width * height
    return opts.source_width * opts.source_height


def predicted_ms(fmt: str, encoding: Encoding, pixels: int) -> float:
    effort = {"jpeg": encoding.jpeg_effort, "webp": encoding.webp_effort, "avif": encoding.avif_effort,
              "jxl": encoding.jxl_effort}.get(fmt)
    factor = WEBP_DEBLOCK_COST if fmt == "webp" and encoding.webp_deblock else 1.0
    return COST_MS_PER_MP[fmt][effort] * factor * pixels / 1e6


def answer_now(preferred: str, has_alpha: bool, opts: RenderOptions, encoding: Encoding, budget_ms: int) -> str:
    """The format a negotiated miss is answered with now: `preferred`, or a faster one down the chain."""
    chain = ALPHA_CHAIN if has_alpha else CHAIN
    if preferred == "jxl":
        chain = ("jxl",) + chain[1:]
    if not budget_ms or preferred not in chain or opts.animated:
        return preferred
    pixels = output_pixels(opts)
    options = chain[chain.index(preferred):]
    for fmt in options:
        if predicted_ms(fmt, encoding, pixels) <= budget_ms:
            return fmt
    return min(options, key=lambda fmt: predicted_ms(fmt, encoding, pixels))
