"""The presets' digests in the edges' cache keys (origin/presets.py).

A preset's URL (`/images/{id}/card`, `/images/{id}/card.webp`) stays the same when its
definition changes; its cache key at the edge carries the digest of the definition, so
an edge rendered from the new configuration looks up a new entry and never serves the
bytes of the old one (those age out unread):

    nginx     map $uri $preset_tag → "|{digest}", appended to proxy_cache_key
    Varnish   hash_data("{digest}") in vcl_hash
    purge.js  the same keys, from edge_settings.js
"""
from __future__ import annotations


def _path(name: str, end: str) -> str:
    # preset names are [a-z][a-z0-9-]*: nothing to escape
    return rf"^/images/[^/?]+/{name}(?:\.[a-z0-9]+)?{end}"


def nginx_map(presets) -> str:
    """The body of `map $uri $preset_tag`."""
    lines = ['default "";'] + [f'"~{_path(p.name, "$")}" "|{p.digest}";' for p in presets]
    return "\n".join(f"        {line}" for line in lines)


def vcl_hash(presets) -> str:
    """Lines for vcl_hash: the digest of the preset a URL names."""
    end = r"(?:\?.*)?$"
    lines = [f'    if (req.url ~ "{_path(p.name, end)}") {{\n        hash_data("{p.digest}");\n    }}'
             for p in presets]
    return "\n".join(lines) or "    # no presets configured"


def js_settings(presets) -> list[dict]:
    return [{"name": p.name, "digest": p.digest} for p in presets]
