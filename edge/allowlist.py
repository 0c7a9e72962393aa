"""The delivery URL allow-list as one regular expression, for the edge (origin/pipeline/request.py's
rule: sizes from the allow-lists, spelled canonically, formats from the fixed list).

The origin checks the same again; the edge's copy means a URL the origin would refuse never
reaches it, nor takes a cache entry.
"""
from __future__ import annotations

from origin.formats import OUTPUT_FORMATS


def _alternatives(values) -> str:
    return "|".join(str(v) for v in sorted(set(values)))


def variant_path(widths, thumb_sizes, formats=OUTPUT_FORMATS) -> str:
    variant = (f"(?:w(?:{_alternatives(widths)})|(?:sq|sm)(?:{_alternatives(thumb_sizes)}))"
               f"(?:\\.(?:{_alternatives(formats)}))?")
    return f"^/images/[A-Za-z0-9_-]+/(?:original|{variant})$"
