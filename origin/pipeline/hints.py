"""Client hints → the width `/images/{id}/auto` serves, and the answer headers that say so.

    Sec-CH-Width           the image's display width in physical pixels (CSS width × DPR): used as is
    Sec-CH-Viewport-Width  the viewport's width in CSS pixels: × Sec-CH-DPR (1 when absent or unusable)
    Sec-CH-DPR             device pixels per CSS pixel

The needed width is Sec-CH-Width when it parses, else Sec-CH-Viewport-Width × DPR rounded up, else
none (the configured default, IMAGEHOST_AUTO_WIDTH). The width served is the smallest allowed width
at or above it, the largest allowed one above them all: a hint only ever picks one of the widths the
allow-list already has, so it cannot make the origin render anything new.

A value that does not parse (or is 0) is ignored, never refused. Widths are 1-6 digits; a DPR is up
to two digits with up to three decimals. The arithmetic is whole milli-pixels so that this module,
the nginx edge (edge/hints.js) and the Varnish edge (edge/imagehost.vcl.template) agree to the pixel.

Content-DPR (served width ÷ CSS width, known when a hint gave the CSS width: Sec-CH-Width ÷ DPR, or
Sec-CH-Viewport-Width) is rounded half up to three decimals, trailing zeros dropped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from origin.pipeline.request import VariantRequest

WIDTH_VALUE = re.compile(r"[0-9]{1,6}")
DPR_VALUE = re.compile(r"([0-9]{1,2})(?:\.([0-9]{1,3}))?")
HINT_HEADERS = ("Sec-CH-DPR", "Sec-CH-Width", "Sec-CH-Viewport-Width")
VARY = ("Accept", "Sec-CH-Width", "Sec-CH-DPR", "Sec-CH-Viewport-Width")
OWS = " \t"


@dataclass(frozen=True)
class Hints:
    width: int | None = None  # Sec-CH-Width, physical pixels
    viewport_width: int | None = None  # Sec-CH-Viewport-Width, CSS pixels
    dpr_milli: int | None = None  # Sec-CH-DPR × 1000

    @property
    def needed_milli(self) -> int | None:
        """The physical width the client needs, in milli-pixels; None: no usable hint."""
        if self.width:
            return self.width * 1000
        if self.viewport_width:
            return self.viewport_width * (self.dpr_milli or 1000)
        return None


def _width(text: str | None) -> int | None:
    value = (text or "").strip(OWS)
    return int(value) or None if WIDTH_VALUE.fullmatch(value) else None


def _dpr_milli(text: str | None) -> int | None:
    match = DPR_VALUE.fullmatch((text or "").strip(OWS))
    if not match:
        return None
    return int(match[1]) * 1000 + int((match[2] or "").ljust(3, "0")) or None


def parse(width: str | None, dpr: str | None, viewport_width: str | None) -> Hints:
    return Hints(_width(width), _width(viewport_width), _dpr_milli(dpr))


def width_class(hints: Hints, widths: tuple[int, ...], default: int) -> int:
    """The allowed width to serve: the smallest ≥ the needed width (or `default`), else the largest."""
    needed = hints.needed_milli
    target = default * 1000 if needed is None else needed
    for width in sorted(widths):
        if width * 1000 >= target:
            return width
    return max(widths)


def content_dpr(served_width: int, hints: Hints) -> str | None:
    """Served width ÷ CSS width, when a hint gave the CSS width; else None."""
    if hints.width:
        num, den = served_width * (hints.dpr_milli or 1000), hints.width * 1000
    elif hints.viewport_width:
        num, den = served_width, hints.viewport_width
    else:
        return None
    milli = (2000 * num + den) // (2 * den)  # × 1000, rounded half up
    return f"{milli // 1000}.{milli % 1000:03d}".rstrip("0").rstrip(".")


def resolve(request: VariantRequest, hints: Hints, widths: tuple[int, ...], default: int) -> VariantRequest:
    """`auto` as the w{n} variant it serves: the same store key, render and bytes as /w{n}."""
    return replace(request, kind="w", size=width_class(hints, widths, default))
