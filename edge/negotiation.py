"""origin/pipeline/negotiate.py's Accept rule as regular expressions, for the edges.

    avif   Accept names image/avif with q > 0
    webp   else Accept names image/webp with q > 0
    jpeg   else (the origin picks PNG for images with alpha: same class)

An element is `media *(; param)`, split on commas; the last `q` parameter
decides, a `q` that is not a number counts as 0 (as float() does), and
wildcards never count. The same patterns become the nginx `map` and the
Varnish `if` chain, and `format_class` below runs them in Python so the tests
can hold them against `negotiate.choose`.

Known deviation: a q so small that float() underflows to 0 ("1e-400") still
counts as positive here. Harmless by construction: the edge sends the origin a
canonical Accept for the class it chose (CANONICAL_ACCEPT), so a cache entry can
never hold another class's bytes.
"""
from __future__ import annotations

import re

CLASSES = ("avif", "webp", "jpeg")
CANONICAL_ACCEPT = {"avif": "image/avif", "webp": "image/webp", "jpeg": "image/jpeg", "-": "*/*"}
# variant paths whose format comes from Accept: w{n}, sq{n}, sm{n}, auto without an extension
NEGOTIATED_PATH = r"^/images/[^/]+/(?:(?:w|sq|sm)[0-9]+|auto)$"
NEGOTIATED_URL = r"^/images/[^/?]+/(?:(?:w|sq|sm)[0-9]+|auto)(?:\?.*)?$"  # the same on a raw URL (Varnish)


def _with_presets(pattern: str, presets) -> str:
    """A NEGOTIATED_* pattern that also takes the configured preset names without an extension."""
    if not presets:
        return pattern
    names = "|".join(sorted(set(presets)))
    return pattern.replace("(?:w|sq|sm)[0-9]+", f"(?:(?:w|sq|sm)[0-9]+|{names})", 1)


def negotiated_path(presets=()) -> str:
    return _with_presets(NEGOTIATED_PATH, presets)


def negotiated_url(presets=()) -> str:
    return _with_presets(NEGOTIATED_URL, presets)

_D = r"[0-9](?:_?[0-9])*"  # digits, single underscores between them (Python float syntax)
_NZD = r"(?:[0-9]_?)*[1-9](?:_?[0-9])*"  # the same, with a non-zero digit
_POSITIVE = (
    r"\+?(?:(?:" + _NZD + r"(?:\." + f"(?:{_D})?" + r")?|" + f"(?:{_D})?" + r"\." + _NZD + r")"
    + r"(?:[eE][+-]?" + _D + r")?|inf(?:inity)?)"
)
_ANY_PARAM = r";[^;,]*"
_NOT_Q_PARAM = r";(?!\s*q\s*(?:[=;,]|$))[^;,]*"
_POSITIVE_Q = r";\s*q\s*=\s*" + _POSITIVE + r"\s*"
_NAN_Q = r";\s*q\s*=\s*[+-]?nan\s*"


def _element(media: str, last_q: str) -> str:
    return r"(?:^|,)\s*" + re.escape(media) + r"\s*" + last_q + r"(?=,|$)"


def accept_pattern(media: str) -> str:
    """Case-insensitive regex: Accept names `media` with q > 0.

    An element whose last q is positive (or absent), not followed by one whose q
    is NaN (negotiate.accepted keeps max(q, previous), and max(nan, x) is nan).
    """
    positive = _element(media, f"(?:(?:{_ANY_PARAM})*{_POSITIVE_Q})?(?:{_NOT_Q_PARAM})*")
    nan = _element(media, f"(?:{_ANY_PARAM})*{_NAN_Q}(?:{_NOT_Q_PARAM})*")
    return positive + f"(?!.*{nan})"


AVIF = accept_pattern("image/avif")
WEBP = accept_pattern("image/webp")


def format_class(accept: str | None) -> str:
    text = accept or ""
    if re.search(AVIF, text, re.IGNORECASE):
        return "avif"
    if re.search(WEBP, text, re.IGNORECASE):
        return "webp"
    return "jpeg"


def nginx_safe(pattern: str) -> str:
    """A pattern ready to sit inside a double-quoted nginx (or VCL) string."""
    if any(ch in pattern for ch in '"\'{}\t\n') or "\\\\" in pattern:
        raise ValueError(f"pattern cannot be quoted for nginx: {pattern!r}")
    return pattern
