"""The delivery URL allow-list as one regular expression, for the edge (origin/pipeline/request.py's
rule: sizes from the allow-lists, spelled canonically, the configured preset names, formats from
the fixed list; `auto` takes its width from the same allow-list, edge/hints.py; and the placeholder,
origin/http/placeholder.py).

The origin checks the same again; the edge's copy means a URL the origin would refuse never
reaches it, nor takes a cache entry.
"""
from __future__ import annotations

from origin.formats import OUTPUT_FORMATS


def _alternatives(values) -> str:
    return "|".join(str(v) for v in sorted(set(values)))


PCRE_END = r"\z"  # the end of the subject: `$` would also match before a trailing newline
PYTHON_END = r"\Z"  # the same in Python's re


def variant_path(widths, thumb_sizes, formats=OUTPUT_FORMATS, end: str = PCRE_END, presets=()) -> str:
    """The allow-list as a PCRE pattern for nginx (end=PYTHON_END: the same for Python's re).
    `presets`: the configured preset names (origin/presets.py: [a-z][a-z0-9-]*, nothing to escape)."""
    named = f"|{_alternatives(presets)}" if presets else ""
    variant = (f"(?:w(?:{_alternatives(widths)})|(?:sq|sm)(?:{_alternatives(thumb_sizes)})|auto{named})"
               f"(?:\\.(?:{_alternatives(formats)}))?")
    return f"^/images/[A-Za-z0-9_-]+/(?:original|placeholder|{variant}){end}"
