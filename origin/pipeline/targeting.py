"""Quality by target: per picture and format, the lowest encoder quality whose output meets an SSIM
target (origin/pipeline/ssim.py), chosen once at ingest and kept with the content.

    samples   the picture at SAMPLE_WIDTHS (from its smallest intermediate, the 1200-px one), held
              in memory: a smaller rendering of a photo scores lower at the same quality (more
              detail per pixel), so each size class gets its own quality; a larger one scores
              higher, so renders wider than w600 take the w600 qualities (a w1200 sample would
              cost 4x the search for the renders that carry most of the bytes)
    search    per sample and format, bisection over the integer qualities within BOUNDS: the lowest
              one whose encode of the sample scores at least the target against the sample's own
              pixels (about 6 encodes per format of the largest sample; a smaller sample searches
              only from the larger one's quality up, in fewer steps)
    stored    {"600": {"jpeg": 70, "webp": 68, ...}, "300": {...}, "150": {...}} as JSON in the
              content's `qualities` column (and the record fallback). A render encodes with the
              qualities of the smallest sample at least as wide as its output (the largest sample's
              for anything wider: larger renderings score higher), at every size
              (Encoding.with_qualities). Renders never search. A picture without them (ingested
              before, or IMAGEHOST_QUALITY_TARGET empty) is encoded at the fixed qualities.

A picture whose sample misses the target even at the top of its bounds gets the top; one that
meets it at the bottom gets the bottom: no search makes a file absurdly large or visibly ruined.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
import pyvips

from origin.formats import FORMATS
from origin.presets import box_size
from origin.pipeline import jxl, ssim
from origin.pipeline.render import HUGE, Encoding, RenderOptions, colour, encode

SAMPLE_WIDTHS = (600, 300, 150)  # largest first: each smaller one searches from its quality up
# the qualities a search may choose, per format (libvips' Q, libjxl's quality)
BOUNDS = {"jpeg": (50, 95), "webp": (50, 95), "avif": (30, 80), "jxl": (50, 95)}


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
    """The qualities of the smallest sample at least `width` wide, else the largest sample's."""
    if not qualities:
        return {}
    wide_enough = [w for w in qualities if w >= width]
    return qualities[min(wide_enough) if wide_enough else max(qualities)]


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
    """score(q): the SSIM of `picture` encoded as `fmt` at quality q against its own pixels (memoised)."""
    opts = RenderOptions("w", picture.width, fmt, picture.width, picture.height)
    prepared = colour(picture, opts).copy_memory()
    reference = ssim.luma(prepared)
    scores: dict[int, float] = {}

    def score(q: int) -> float:
        if q not in scores:
            data = encoder(prepared, q) if encoder else encode(prepared, opts, encoding.with_qualities({fmt: q}))
            scores[q] = ssim.ssim(decoded_luma(data, fmt), reference)
        return scores[q]

    return score


def search(picture: pyvips.Image, fmt: str, target: float, encoding: Encoding = Encoding(), low: int | None = None,
           encoder=None) -> tuple[int, float]:
    """(quality, SSIM): the lowest quality within BOUNDS[fmt] (from `low` up) whose encode of `picture`
    scores >= target; the top of the bounds when none does. `encoder(pixels, q)` replaces the
    origin's own encoder for `fmt` (the benchmark's baseline JPEG)."""
    score = scorer(picture, fmt, encoding, encoder)
    bottom, high = BOUNDS[fmt]
    low = max(bottom, min(high, low or bottom))
    while low < high:  # every quality below `low` misses; `high` meets it, or is the top of the bounds
        middle = (low + high) // 2
        if score(middle) >= target:
            high = middle
        else:
            low = middle + 1
    return high, score(high)


def choose(source: bytes, targets: dict[str, float], encoding: Encoding = Encoding()) -> Chosen:
    """The qualities for every format in `targets` and every sample width, from `source`."""
    started = time.perf_counter()
    qualities: dict[int, dict[str, int]] = {}
    scores: dict[int, dict[str, float]] = {}
    larger: dict[str, int] = {}
    for width in SAMPLE_WIDTHS:
        picture = sample(source, width)
        if picture.width < width and qualities:
            continue  # the picture is narrower than this sample: the larger sample already saw it whole
        qualities[width], scores[width] = {}, {}
        for fmt, target in targets.items():
            if fmt not in BOUNDS or not FORMATS[fmt].output:
                continue
            q, score = search(picture, fmt, target, encoding, low=larger.get(fmt))
            qualities[width][fmt], scores[width][fmt] = q, score
        larger = qualities[width]
    return Chosen(qualities, scores, (time.perf_counter() - started) * 1000)
