"""origin/pipeline/negotiate.py's Accept rule as regular expressions, for the edges.

    avif   Accept names image/avif with q > 0
    jxl    else Accept names image/jxl with q > 0
    webp   else Accept names image/webp with q > 0
    jpeg   else (the origin picks PNG for images with alpha: same class)

An element is `media *(; param)`, split on commas; the last `q` parameter
decides, a `q` that is not a number counts as 0 (as float() does), and
wildcards never count. The same patterns become the nginx `map` and the
Varnish `if` chain (nginx_accept_map, vcl_accept_chain), and `format_class` below runs them in Python so the tests
can hold them against `negotiate.choose`.

Known deviation: a q so small that float() underflows to 0 ("1e-400") still
counts as positive here. Harmless by construction: the edge sends the origin a
canonical Accept for the class it chose (CANONICAL_ACCEPT), so a cache entry can
never hold another class's bytes.
"""
from __future__ import annotations

import re

CLASSES = ("avif", "jxl", "webp", "jpeg")  # in order of preference; the last one is the default
CANONICAL_ACCEPT = {"avif": "image/avif", "jxl": "image/jxl", "webp": "image/webp", "jpeg": "image/jpeg", "-": "*/*"}
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
JXL = accept_pattern("image/jxl")
WEBP = accept_pattern("image/webp")
PATTERNS = {"avif": AVIF, "jxl": JXL, "webp": WEBP}  # every class but the default, in CLASSES' order


def format_class(accept: str | None) -> str:
    text = accept or ""
    for name, pattern in PATTERNS.items():
        if re.search(pattern, text, re.IGNORECASE):
            return name
    return CLASSES[-1]


def nginx_accept_map(indent: str = "        ") -> str:
    """The body of nginx's `map $http_accept $accept_class`: the patterns in order, then the default."""
    lines = [f'{indent}"~*{nginx_safe(pattern)}" {name};' for name, pattern in PATTERNS.items()]
    return "\n".join(lines + [f"{indent}default {CLASSES[-1]};"])


def nginx_class_maps(indent: str = "        ") -> tuple[str, str]:
    """The bodies of `map $negotiated$accept_class $format_class` and `map $format_class $origin_accept`."""
    classes = "\n".join([f"{indent}1{name} {name};" for name in CLASSES] + [f"{indent}default -;"])
    accepts = "\n".join([f"{indent}{name} {CANONICAL_ACCEPT[name]};" for name in CLASSES]
                        + [f'{indent}default "{CANONICAL_ACCEPT["-"]}";'])
    return classes, accepts


def vcl_accept_chain(indent: str = "        ") -> str:
    """Varnish's `if … elsif … else` chain setting X-Format-Class from Accept."""
    lines = []
    for n, (name, pattern) in enumerate(PATTERNS.items()):
        lines.append(f'{indent}{"if" if n == 0 else "} elsif"} (req.http.Accept ~ "(?i){nginx_safe(pattern)}") {{')
        lines.append(f'{indent}    set req.http.X-Format-Class = "{name}";')
    lines += [f"{indent}}} else {{", f'{indent}    set req.http.X-Format-Class = "{CLASSES[-1]}";', f"{indent}}}"]
    return "\n".join(lines)


def nginx_safe(pattern: str) -> str:
    """A pattern ready to sit inside a double-quoted nginx (or VCL) string."""
    if any(ch in pattern for ch in '"\'{}\t\n') or "\\\\" in pattern:
        raise ValueError(f"pattern cannot be quoted for nginx: {pattern!r}")
    return pattern
