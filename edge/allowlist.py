"""The delivery URL allow-list as one regular expression, for the edge (origin/pipeline/request.py's
rule: sizes from the allow-lists, spelled canonically, the configured preset names, formats from
the fixed list; `auto` takes its width from the same allow-list, edge/hints.py; and the placeholder,
origin/http/placeholder.py).

The origin checks the same again; the edge's copy means a URL the origin would refuse never
reaches it, nor takes a cache entry. `refusals` says why, as the origin would: the same message and
lists in the 400's JSON body (tests/test_fuzz.py holds the two to each other).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from origin.formats import OUTPUT_FORMATS
from origin.pipeline.request import MALFORMED_VARIANT


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
    return f"^/images/[A-Za-z0-9_-]{{6,64}}/(?:original|placeholder|{variant}){end}"


@dataclass(frozen=True)
class Refusal:
    """Why a path off the allow-list is refused, as the origin would say it (origin/pipeline/request.py,
    origin/keys.check_id): the first rule whose `pattern` matches the path answers. `message` and
    `fields` (the JSON members after it, already encoded, with a leading comma) may name the pattern's
    groups as \\1 … \\9; a group only ever holds [a-z0-9.], nothing a JSON string must escape."""
    pattern: str
    message: str
    fields: str = ""


def _compact(values) -> str:
    return json.dumps(list(values), separators=(",", ":"))


NOT_DELIVERY = ("not a delivery URL of this host: /images/{id}/{variant}, the variant original, w{width}, "
                "sq{size} or sm{size} from the allow-lists, auto or a preset, optionally .{fmt}, or placeholder")


def refusals(widths, thumb_sizes, formats=OUTPUT_FORMATS, presets=(), end: str = PCRE_END) -> tuple[Refusal, ...]:
    """The rules, in order, for a path that `variant_path` refused: a malformed id, a second spelling of a
    number, a size off its allow-list, a format off the fixed list, a name that is no variant; anything
    else is not a delivery URL at all."""
    fmt = r"(\.[a-z0-9]{1,8})?"
    image = "^/images/[^/]+/"
    names = "|".join(["w[0-9]{1,6}", "(?:sq|sm)[0-9]{1,6}", "auto", *sorted(set(presets))])
    return (
        Refusal(f"^/images/(?![A-Za-z0-9_-]{{6,64}}/)[^/]*/[^/]*{end}", "malformed image id"),
        Refusal(f"{image}((w|sq|sm)(?=[0-9]{{2,6}}(?:\\.[a-z0-9]{{1,8}})?{end})0+([1-9][0-9]*|0){fmt}){end}",
                r"\1 is not the canonical spelling of \2\3\4", r',"canonical":"\2\3\4"'),
        Refusal(f"{image}(w(?!(?:{_alternatives(widths)})(?:\\.|{end}))[0-9]{{1,6}}){fmt}{end}",
                r"\1 is not an allowed size", f',"allowed":{_compact(widths)}'),
        Refusal(f"{image}((?:sq|sm)(?!(?:{_alternatives(thumb_sizes)})(?:\\.|{end}))[0-9]{{1,6}}){fmt}{end}",
                r"\1 is not an allowed size",
                f',"allowed":{_compact(thumb_sizes)}'),
        Refusal(f"{image}(?:{names})\\.([a-z0-9]{{1,8}}){end}", r"unknown format '\1'",
                f',"allowed":{_compact(formats)}'),
        Refusal(f"{image}[^/]*{end}", MALFORMED_VARIANT, f',"presets":{_compact(presets)}'),
        Refusal("", NOT_DELIVERY),
    )


def body(refusal: Refusal, group=lambda n: f"\\{n}", error: str = "invalid_request") -> str:
    """The refusal's JSON body, each group named as `group(n)` gives it."""
    message = json.dumps(refusal.message).replace("\\\\", "\\")  # \\1 … as they were written
    return re.sub(r"\\([1-9])", lambda m: group(m[1]),
                  '{"error":' + json.dumps(error) + ',"message":' + message + refusal.fields + "}")


def nginx_refusal_map(refusals_: tuple[Refusal, ...]) -> str:
    """The lines of an nginx `map $uri $refusal`: each rule's body, its groups as $1 … $9."""
    lines = []
    for refusal in refusals_:
        value = body(refusal, lambda n: f"${n}").replace("'", "\\'")
        key = f'"~{refusal.pattern}"' if refusal.pattern else "default"
        lines.append(f"        {key} '{value}';")
    return "\n".join(lines)


def vcl_refusal_chain(refusals_: tuple[Refusal, ...], path: str = "req.http.X-Path", indent: str = " " * 8) -> str:
    """VCL for vcl_recv, `path` the URL without its query: the first matching rule's message as the
    synth reason, its fields in X-Error-Fields (vcl_synth writes the body)."""
    lines = []
    for refusal in refusals_:
        if not refusal.pattern:
            lines += ["unset req.http.X-Error-Fields;", f'return (synth(400, "{refusal.message}"));']
            continue
        lines += [f'if ({path} ~ "{refusal.pattern}") {{',
                  f'    set req.http.X-Error-Fields = regsub({path}, "{refusal.pattern}", {{"{refusal.fields}"}});',
                  f'    return (synth(400, regsub({path}, "{refusal.pattern}", "{refusal.message}")));',
                  "}"]
    return "\n".join(indent + line for line in lines)
