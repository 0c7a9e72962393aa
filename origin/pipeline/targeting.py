"""Quality by target: per picture and format, the encoder quality chosen once at ingest, from SSIM
(origin/pipeline/ssim.py) measured on samples of the picture, and kept with the content.

    samples   the picture at SAMPLE_WIDTHS (from its smallest intermediate, the 1200-px one), held
              in memory: a rendering of another size scores differently at the same quality (a
              smaller one of a photo lower: more detail per pixel), so each size class gets its own
              quality. WIDEST caps each format's samples: JPEG's go to w1200, the renders that carry
              most of the bytes; for WebP a w1200 sample took 0.6 % fewer bytes for 1.3 s more search
              per picture, for AVIF it would cost 4x the w600 search, so their wider renders take
              the w600 qualities
    price     (IMAGEHOST_QUALITY_PRICE) bytes per pixel one unit of SSIM is worth: per sample and
              format, the quality of least bytes/pixel - price x SSIM, by ternary search over
              BOUNDS (about 9 encodes of the w600 sample; a smaller sample looks only NEAR the
              nearest larger one's choice, the w1200 one as far the other way from the w600's).
              One price for every picture spends bytes where they buy the most SSIM: a picture
              whose quality is cheap gets more of it, one whose quality is dear less, for the same
              mean as one fixed quality and fewer bytes in all
    floor     (IMAGEHOST_QUALITY_TARGET) the SSIM every sample's encode must reach: from the
              price's choice (or from the bottom of BOUNDS, without a price) the lowest quality
              that meets it, by bisection; the top of the bounds when none does
    stored    {"1200": {"jpeg": 66}, "600": {"jpeg": 70, "webp": 68, ...}, "300": {...}, "150": {...}}
              as JSON in the content's `qualities` column (and the record fallback). A render
              encodes, per format, with the quality of the smallest sample at least as wide as its
              output that has one (the format's widest sample's for anything wider), at every size
              (Encoding.with_qualities). Renders never search. A picture without them (ingested
              before, or neither setting given) is encoded at the fixed qualities.

No search leaves BOUNDS: no file is made absurdly large or visibly ruined.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass

import numpy as np
import pyvips

from origin.formats import FORMATS
from origin.presets import box_size
from origin.pipeline import jxl, ssim
from origin.pipeline.render import HUGE, Encoding, RenderOptions, colour, encode

SAMPLE_WIDTHS = (600, 1200, 300, 150)  # searched in this order, each from the choice of the nearest one before it
# the widest sample searched per format: JPEG's encode is cheap enough for a w1200 one, which holds
# most of the bytes; the others' renders wider than w600 take the w600 qualities
WIDEST = {"jpeg": 1200, "webp": 600, "avif": 600, "jxl": 600}
# the qualities a search may choose, per format (libvips' Q, libjxl's quality)
BOUNDS = {"jpeg": (50, 95), "webp": (50, 95), "avif": (30, 80), "jxl": (50, 95)}
# a priced search: a smaller sample looks this far below and above the nearer sample's quality
# (smaller renderings take the same or a slightly higher one; a larger sample looks the other way),
# and its price per pixel grows as (PRICE_WIDTH / width) ** PRICE_EXPONENT (the exponent that keeps
# w300's and w600's mean SSIM level with the fixed qualities' at one price: loadtest/bench_quality.py,
# 48 photos)
NEAR = (-4, 12)
NEAR_WIDER = (-NEAR[1], -NEAR[0])  # the window of a sample wider than the nearest one searched
PRICE_WIDTH, PRICE_EXPONENT = 600, 0.1


@dataclass(frozen=True)
class Chosen:
    qualities: dict[int, dict[str, int]]  # sample width -> format -> quality
    scores: dict[int, dict[str, float]]  # the samples' SSIM at the chosen qualities
    ms: float  # the whole search, the samples included

    def to_json(self) -> str:
        return json.dumps({str(width): q for width, q in self.qualities.items()}, sort_keys=True)


def parse(text: str | None) -> dict[int, dict[str, int]]:
    """A stored `qualities` value; {} for none (fixed qualities) or anything unreadable."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    out = {}
    for width, chosen in value.items():
        if not str(width).isdigit() or not isinstance(chosen, dict):
            continue
        good = {fmt: q for fmt, q in chosen.items() if fmt in BOUNDS and isinstance(q, int)
                and BOUNDS[fmt][0] <= q <= BOUNDS[fmt][1]}
        if good:
            out[int(width)] = good
    return out


def for_width(qualities: dict[int, dict[str, int]], width: int) -> dict[str, int]:
    """Per format, the quality of the smallest sample at least `width` wide that has one, else the
    largest sample's."""
    out: dict[str, int] = {}
    for fmt in {fmt for chosen in qualities.values() for fmt in chosen}:
        has = [w for w in qualities if fmt in qualities[w]]
        wide_enough = [w for w in has if w >= width]
        out[fmt] = qualities[min(wide_enough) if wide_enough else max(has)][fmt]
    return out


def encoding_for(encoding: Encoding, qualities: str | None, width: int) -> Encoding:
    """The encoding a render `width` pixels wide uses: the picture's stored qualities, or the fixed ones."""
    return encoding.with_qualities(for_width(parse(qualities), width))


def output_width(opts: RenderOptions) -> int:
    if opts.kind in ("sq", "sm"):
        return min(opts.size, opts.source_width, opts.source_height)
    if opts.kind in ("fit", "fill"):
        return box_size(opts.kind, opts.size, opts.height, opts.source_width, opts.source_height)[0]
    return min(opts.size, opts.source_width)


def sample(source: bytes, width: int) -> pyvips.Image:
    """A picture the search encodes: `source` (an intermediate) shrunk to `width`, upright, in memory."""
    return pyvips.Image.thumbnail_buffer(source, width, height=HUGE, size="down").copy_memory()


def decoded_luma(data: bytes, fmt: str) -> np.ndarray:
    if fmt == "jxl":
        pixels = np.ascontiguousarray(jxl.decode(data))
        bands = 1 if pixels.ndim == 2 else pixels.shape[2]
        image = pyvips.Image.new_from_memory(pixels.tobytes(), pixels.shape[1], pixels.shape[0], bands, "uchar")
        return ssim.luma(image.copy(interpretation="b-w" if bands <= 2 else "srgb"))
    return ssim.luma(pyvips.Image.new_from_buffer(data, ""))


def scorer(picture: pyvips.Image, fmt: str, encoding: Encoding = Encoding(), encoder=None):
    """measure(q): (bytes, SSIM) of `picture` encoded as `fmt` at quality q, the SSIM against its own
    pixels (memoised)."""
    opts = RenderOptions("w", picture.width, fmt, picture.width, picture.height)
    prepared = colour(picture, opts).copy_memory()
    reference = ssim.luma(prepared)
    seen: dict[int, tuple[int, float]] = {}

    def measure(q: int) -> tuple[int, float]:
        if q not in seen:
            data = encoder(prepared, q) if encoder else encode(prepared, opts, encoding.with_qualities({fmt: q}))
            seen[q] = (len(data), ssim.ssim(decoded_luma(data, fmt), reference))
        return seen[q]

    return measure


def price_per_pixel(price: float, width: int) -> float:
    """The price a sample `width` pixels wide is searched at: a smaller rendering needs more bytes
    per pixel for the same SSIM, so the same mean SSIM as a fixed quality takes a higher price."""
    return price * (PRICE_WIDTH / width) ** PRICE_EXPONENT


def _lowest(meets, low: int, high: int) -> int:
    """The lowest q in [low, high] for which meets(q), by bisection; `high` when none does."""
    while low < high:  # every quality below `low` misses; `high` meets it, or is the top of the bounds
        middle = (low + high) // 2
        if meets(middle):
            high = middle
        else:
            low = middle + 1
    return high


def _cheapest(cost, low: int, high: int) -> int:
    """The q in [low, high] of least cost(q), by ternary search (the cost falls, then rises)."""
    while high - low > 2:
        third = (high - low) // 3
        if cost(low + third) <= cost(high - third):
            high = high - third - 1
        else:
            low = low + third + 1
    return min(range(low, high + 1), key=cost)


def search(picture: pyvips.Image, fmt: str, target: float, encoding: Encoding = Encoding(), low: int | None = None,
           encoder=None, price: float = 0.0, window: tuple[int, int] = NEAR) -> tuple[int, float]:
    """(quality, SSIM) for `picture` within BOUNDS[fmt]. With a `price` (bytes per pixel one unit of
    SSIM is worth): the quality of least bytes/pixel - price x SSIM, searched within `window` of
    `low` (the nearest sample's choice) when given. Then, or without a price, the `target` SSIM is
    a floor: the lowest quality from there up that meets it; the top of the bounds when none does.
    `encoder(pixels, q)` replaces the origin's own encoder for `fmt` (the benchmark's baseline JPEG)."""
    measure = scorer(picture, fmt, encoding, encoder)
    bottom, top = BOUNDS[fmt]
    start = max(bottom, min(top, low or bottom))
    if price:
        if low is not None:
            bottom, top = max(bottom, low + window[0]), min(top, low + window[1])
        pixels, each = picture.width * picture.height, price_per_pixel(price, picture.width)
        start = _cheapest(lambda q: measure(q)[0] / pixels - each * measure(q)[1], bottom, top)
    if target and measure(start)[1] < target:
        start = _lowest(lambda q: measure(q)[1] >= target, start + 1, BOUNDS[fmt][1])
    return start, measure(start)[1]


def choose(source: bytes, targets: dict[str, float], encoding: Encoding = Encoding(),
           prices: dict[str, float] | None = None) -> Chosen:
    """The qualities for every format in `targets` (SSIM floors) or `prices` and every sample width,
    from `source`."""
    prices = prices or {}
    started = time.perf_counter()
    qualities: dict[int, dict[str, int]] = {}
    scores: dict[int, dict[str, float]] = {}
    formats = [fmt for fmt in sorted(set(targets) | set(prices), key=list(BOUNDS).index)
               if fmt in BOUNDS and FORMATS[fmt].output]
    for width in SAMPLE_WIDTHS:
        wanted = [fmt for fmt in formats if width <= WIDEST[fmt]]
        if not wanted:
            continue
        picture = sample(source, width)
        if picture.width < width and qualities:
            continue  # the picture is narrower than this sample: a searched one already saw it whole
        qualities[width], scores[width] = {}, {}
        for fmt in wanted:
            searched = [w for w in qualities if fmt in qualities[w]]
            nearest = min(searched, key=lambda w: abs(math.log(w / width)), default=None)
            price = prices.get(fmt, 0.0)
            if nearest is None or nearest > width:  # a smaller sample needs no lower quality than a larger one
                low, window = (qualities[nearest][fmt] if nearest else None), NEAR
            else:  # a larger one may need less: the price looks below the nearer choice, a floor from the bottom
                low, window = (qualities[nearest][fmt] if price else None), NEAR_WIDER
            q, score = search(picture, fmt, targets.get(fmt, 0.0), encoding, low=low, price=price, window=window)
            qualities[width][fmt], scores[width][fmt] = q, score
    return Chosen(qualities, scores, (time.perf_counter() - started) * 1000)
