"""Client hints at the edges: origin/pipeline/hints.py's rule as VCL for Varnish (nginx: edge/hints.js,
run only on the paths AUTO_PATH matches).

`vcl_recv_hints` is the body of `sub hint_width`: for /images/{id}/auto[.{fmt}] it parses the
client's Sec-CH-Width, Sec-CH-DPR and Sec-CH-Viewport-Width (std.collect first: repeated headers
join into one value that does not parse, as they do at the origin), folds them into the width
class (X-Hint-Width, hashed next to the format class) and replaces them with the canonical
`Sec-CH-Width: {class}`, so neither the hash nor Vary can be split by raw hint values. What the
client said is kept in X-Hint-Num/X-Hint-Den for `vcl_deliver_hints`, which writes this client's
Content-DPR from the served width. Whole milli-pixels, as in Python and njs.
"""
from __future__ import annotations

AUTO_PATH = r"^/images/[^/]+/auto(?:\.[a-z0-9]+)?$"  # nginx's $uri: where njs folds the hints
AUTO_URL = r"^/images/[^/?]+/auto(?:\.[a-z0-9]+)?(?:\?.*)?$"  # the same on a raw URL (Varnish)
_WIDTH = r"^[ \t]*[0-9]{1,6}[ \t]*$"
_DPR = r"^[ \t]*[0-9]{1,2}(?:\.[0-9]{1,3})?[ \t]*$"
_TRIM = r"^[ \t]*([0-9.]*)[ \t]*$"


def _int(header: str) -> str:
    return f'std.integer(regsub(req.http.{header}, "{_TRIM}", "\\1"), 0)'


def vcl_recv_hints(widths, auto_width: int) -> str:
    ordered = sorted(widths)
    dpr_digits = ('regsub(regsub(regsub(req.http.Sec-CH-DPR, "' + _TRIM + '", "\\1"), "^([0-9]+)$", "\\1.") '
                  '+ "000", "^([0-9]+)\\.([0-9]{3}).*$", "\\1\\2")')
    lines = [
        "    std.collect(req.http.Sec-CH-Width);",
        "    std.collect(req.http.Sec-CH-DPR);",
        "    std.collect(req.http.Sec-CH-Viewport-Width);",
        '    set req.http.X-Hint-DPR = "1000";',
        f'    if (req.http.Sec-CH-DPR ~ "{_DPR}" && std.integer({dpr_digits}, 0) > 0) {{',
        f"        set req.http.X-Hint-DPR = std.integer({dpr_digits}, 0);",
        "    }",
        f'    set req.http.X-Hint-Need = "{auto_width * 1000}";',
        f'    if (req.http.Sec-CH-Width ~ "{_WIDTH}" && {_int("Sec-CH-Width")} > 0) {{',
        f"        set req.http.X-Hint-Need = {_int('Sec-CH-Width')} * 1000;",
        "        set req.http.X-Hint-Num = req.http.X-Hint-DPR;",
        f"        set req.http.X-Hint-Den = {_int('Sec-CH-Width')} * 1000;",
        f'    }} elsif (req.http.Sec-CH-Viewport-Width ~ "{_WIDTH}" && {_int("Sec-CH-Viewport-Width")} > 0) {{',
        f"        set req.http.X-Hint-Need = {_int('Sec-CH-Viewport-Width')} * std.integer(req.http.X-Hint-DPR, 1000);",
        '        set req.http.X-Hint-Num = "1";',
        f"        set req.http.X-Hint-Den = {_int('Sec-CH-Viewport-Width')};",
        "    }",
    ]
    chain = []
    for width in ordered:
        keyword = "if" if not chain else "} elsif"
        chain.append(f'    {keyword} (std.integer(req.http.X-Hint-Need, 0) <= {width * 1000}) {{')
        chain.append(f'        set req.http.X-Hint-Width = "{width}";')
    chain += ["    } else {", f'        set req.http.X-Hint-Width = "{ordered[-1]}";', "    }"]
    tail = [
        "    unset req.http.X-Hint-DPR;",
        "    unset req.http.X-Hint-Need;",
        "    unset req.http.Sec-CH-DPR;",
        "    unset req.http.Sec-CH-Viewport-Width;",
        "    set req.http.Sec-CH-Width = req.http.X-Hint-Width;",
    ]
    return "\n".join(lines + chain + tail)


def vcl_deliver_hints() -> str:
    milli = ("(2000 * std.integer(resp.http.X-Image-Width, 0) * std.integer(req.http.X-Hint-Num, 0)"
             " + std.integer(req.http.X-Hint-Den, 1)) / (2 * std.integer(req.http.X-Hint-Den, 1))")
    return "\n".join([
        "    unset resp.http.Content-DPR;",
        '    if (req.http.X-Hint-Den && resp.http.X-Image-Width ~ "^[0-9]{1,6}$") {',
        f"        set req.http.X-Hint-Milli = {milli};",
        '        set resp.http.Content-DPR = regsub("" + std.integer(req.http.X-Hint-Milli, 0) / 1000 + "." + '
        'regsub("00" + std.integer(req.http.X-Hint-Milli, 0) % 1000, "^.*([0-9]{3})$", "\\1"), "\\.?0+$", "");',
        "    }",
    ])
