"""Render the nginx edge configuration from Settings into a prefix directory.

    {prefix}/nginx.conf          from nginx/edge.conf.template
    {prefix}/proxy.conf          from nginx/proxy.conf.template
    {prefix}/delivery.conf       from nginx/delivery.conf.template
    {prefix}/js/                 edge/signature.js, edge/purge.js, edge/hints.js and the rendered
                                 edge_settings.js (signing keys: mode 0600)
    {prefix}/cache, logs, tmp    everything nginx writes

`nginx_command` gives the command line that runs it in the foreground.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from edge import allowlist, hints, negotiation, presets
from origin.formats import OUTPUT_FORMATS
from origin.security.referers import RefererPolicy
from origin.security.signing import SigningKeys

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "nginx"
JS_SOURCES = ("signature.js", "purge.js", "hints.js")
CACHE_LEVELS = (1, 2)
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")
FAIL_TIMEOUT = 2  # seconds an origin that failed is left out of the upstream group


@dataclass(frozen=True)
class EdgeOptions:
    prefix: Path  # where the config and everything nginx writes go
    listen: str  # "127.0.0.1:8080"
    origin: str  # the upstream group: "unix:/path/origin.sock", "127.0.0.1:8081", or several, comma-separated
    plain_listen: str = ""  # a second server on the same cache with no hotlink checks (benchmark baseline)
    edge_ttl: int = 0  # 0: honour the origin's Cache-Control; n > 0: cache every 200 for n s (tests)
    workers: str = "auto"
    cache_max_size: str = "10g"
    max_body: int = 0  # request bodies the edge lets through; 0: the origin's upload limit


def options_from_settings(settings) -> EdgeOptions:
    return EdgeOptions(
        prefix=(settings.data_dir / "edge").resolve(),
        listen=f"{settings.host}:{settings.port}",
        origin=f"unix:{settings.origin_socket}",
    )


def fill(template: str, values: dict[str, str]) -> str:
    def value(match: re.Match) -> str:
        return values[match.group(1)]

    return PLACEHOLDER.sub(value, template)


def _referer_map(policy: RefererPolicy) -> str:
    empty = "1" if policy.allow_empty else "0"
    pattern = negotiation.nginx_safe(policy.pattern)
    return "\n".join(f"        {line}" for line in ('default 0;', f'"" {empty};', f'"~*{pattern}" 1;'))


def _signature_check(settings) -> str:
    if not settings.signing_required:
        return "            # signed URLs not required (IMAGEHOST_SIGNING_REQUIRED=0)"
    return (
        "            if ($signature_refusal) {\n"
        "                add_header Cache-Control no-store always;\n"
        "                return 403 '{\"error\":\"bad_signature\",\"message\":\"$signature_refusal\"}\\n';\n"
        "            }"
    )


def _origin_servers(origin: str) -> str:
    """One `server` line per origin. With several, a request whose origin fails to connect or dies
    mid-answer goes to the next one (proxy.conf: proxy_next_upstream), and a failed origin is left
    out for FAIL_TIMEOUT: a rolling restart waits that long after each origin is back."""
    servers = [s.strip() for s in origin.split(",") if s.strip()]
    if not servers:
        raise ValueError("the edge needs at least one origin")
    if len(servers) == 1:
        return f"        server {servers[0]};"
    lines = ["        hash $origin_route consistent;"]
    return "\n".join(lines + [f"        server {server} max_fails=1 fail_timeout={FAIL_TIMEOUT}s;" for server in servers])


def _plain_server(options: EdgeOptions) -> str:
    if not options.plain_listen:
        return ""
    return (
        "    # benchmark baseline: the same cache, no Referer or signature checks\n"
        "    server {\n"
        f"        listen {options.plain_listen};\n"
        f"        location /images/ {{ include {options.prefix}/delivery.conf; }}\n"
        "    }"
    )


def _edge_settings_js(settings, options: EdgeOptions) -> str:
    keys = dict(SigningKeys.parse(settings.signing_keys).keys)
    values = {
        "keys": keys,
        "cacheDir": str(options.prefix / "cache"),
        "levels": list(CACHE_LEVELS),
        "widths": list(settings.widths),
        "thumbs": list(settings.thumb_sizes),
        "presets": presets.js_settings(settings.named_presets),
        "formats": list(OUTPUT_FORMATS),
        "classes": list(negotiation.CLASSES),
        "autoWidth": settings.auto_width,
    }
    return "// rendered by edge/render.py: signing keys, cache layout, allow-lists\n" \
           f"export default {json.dumps(values, indent=2)};\n"


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def render(settings, options: EdgeOptions) -> Path:
    """Write the configuration for `options` into options.prefix; return nginx.conf's path."""
    prefix = options.prefix
    for sub in ("cache", "logs", "js", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    ttl = options.edge_ttl
    values = {
        "user": "user root root;  # the launcher runs as root: workers keep its rights on the data dir"
        if os.geteuid() == 0 else "",
        "workers": str(options.workers),
        "prefix": str(prefix),
        "listen": options.listen,
        "origin": options.origin,
        "levels": ":".join(map(str, CACHE_LEVELS)),
        "cache_max_size": options.cache_max_size,
        "origin_servers": _origin_servers(options.origin),
        "max_body": str(options.max_body or settings.max_upload_bytes),
        "variant_path": allowlist.variant_path(settings.widths, settings.thumb_sizes,
                                               presets=settings.named_presets.names),
        "refusal_map": allowlist.nginx_refusal_map(allowlist.refusals(settings.widths, settings.thumb_sizes,
                                                                        presets=settings.named_presets.names)),
        "accept_class_map": negotiation.nginx_accept_map(),
        "format_class_map": negotiation.nginx_class_maps()[0],
        "origin_accept_map": negotiation.nginx_class_maps()[1],
        "negotiated_path": negotiation.negotiated_path(settings.named_presets.names),
        "preset_map": presets.nginx_map(settings.named_presets),
        "auto_path": hints.AUTO_PATH,
        "referer_map": _referer_map(RefererPolicy.from_settings(settings)),
        "signature_check": _signature_check(settings),
        "plain_server": _plain_server(options),
        "ignore_cache_headers": " Cache-Control Expires" if ttl else "",
        "cache_valid": f"proxy_cache_valid 200 {ttl}s;" if ttl else "# the origin's Cache-Control decides",
    }
    for name in ("edge.conf", "proxy.conf", "delivery.conf"):
        text = fill((TEMPLATES / f"{name}.template").read_text(), values)
        _write(prefix / ("nginx.conf" if name == "edge.conf" else name), text, 0o600)
    for name in JS_SOURCES:
        shutil.copyfile(Path(__file__).with_name(name), prefix / "js" / name)
    _write(prefix / "js" / "edge_settings.js", _edge_settings_js(settings, options), 0o600)
    return prefix / "nginx.conf"


def nginx_command(conf: Path, *, test: bool = False) -> list[str]:
    prefix = conf.parent
    command = [NGINX, "-p", f"{prefix}/", "-c", str(conf), "-e", str(prefix / "logs" / "error.log")]
    return command + (["-t", "-q"] if test else ["-g", "daemon off;"])


def main(argv: list[str] | None = None) -> int:
    """`python -m edge.render`: an edge for a deployment (deploy/docker-compose.yml's `edge`), its
    settings from the same IMAGEHOST_* environment as the origins'."""
    import argparse
    import sys

    from origin.config import ConfigError, Settings

    parser = argparse.ArgumentParser(prog="python -m edge.render", description="render (and run) an nginx edge")
    parser.add_argument("--listen", default="0.0.0.0:8080", help="address:port the edge serves")
    parser.add_argument("--origins", required=True, help="the origins, comma-separated host:port (an upstream group)")
    parser.add_argument("--prefix", default="/var/cache/imagehost-edge", help="config, cache, logs")
    parser.add_argument("--cache-size", default="10g", help="the cache's max_size")
    parser.add_argument("--exec", action="store_true", help="then run nginx in the foreground")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"imagehost edge: configuration error: {exc}", file=sys.stderr)
        return 2
    options = EdgeOptions(prefix=Path(args.prefix), listen=args.listen, origin=args.origins,
                          cache_max_size=args.cache_size)
    conf = render(settings, options)
    print(f"imagehost edge: {conf} (origins {args.origins})", flush=True)
    if args.exec:
        command = nginx_command(conf)
        os.execv(command[0], command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
