"""The Varnish edge: render edge/imagehost.vcl.template, and the varnishd command line.

Debian's varnish plus varnish-vmod-digest (HMAC for signed URLs). The VCL has
the nginx edge's contract: the cache key is the path plus the format class,
the Referer allow-list and signed URLs are checked on every request, and
`POST /purge/images/{id}` from loopback bans every variant of the image
(obj.http.X-Image-Id, so the ban lurker can clear them in the background).
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from edge import allowlist, hints, negotiation, presets
from edge.render import fill
from origin.security.referers import RefererPolicy
from origin.security.signing import SigningKeys

TEMPLATE = Path(__file__).with_name("imagehost.vcl.template")
VARNISHD = shutil.which("varnishd") or "/usr/sbin/varnishd"
SAFE_SECRET = re.compile(r"^[A-Za-z0-9_.~+/=-]+$")
PARAM = r"^[^?]*\?(?:.*&)?{name}=([^&]*).*$"

_REFUSE = '        set req.http.X-Error = "bad_signature";\n        return (synth(403, "{message}"));'


def _refuse(condition: str, message: str) -> str:
    return f"    if ({condition}) {{\n{_REFUSE.format(message=message)}\n    }}"


def _signature_check(settings) -> str:
    if not settings.signing_required:
        return "    # signed URLs not required (IMAGEHOST_SIGNING_REQUIRED=0)"
    keys = SigningKeys.parse(settings.signing_keys).keys
    for _, secret in keys:
        if not SAFE_SECRET.match(secret):
            raise ValueError("a signing secret has characters VCL cannot quote; use URL-safe base64")
    lines = [_refuse(" || ".join(f'req.url !~ "^[^?]*\\?(?:.*&)?{n}=[^&]"' for n in "kes"),
                     "this URL must be signed (k, e and s parameters)")]
    for name in "kes":
        lines.append(f'    set req.http.X-Sig-{name.upper()} = regsub(req.url, "{PARAM.format(name=name)}", "\\1");')
    lines.append('    set req.http.X-Sig-Secret = "";')
    for kid, secret in keys:
        lines.append(f'    if (req.http.X-Sig-K == "{kid}") {{ set req.http.X-Sig-Secret = "{secret}"; }}')
    lines += [
        _refuse('req.http.X-Sig-Secret == ""', "unknown or retired signing key"),
        _refuse('req.http.X-Sig-E !~ "^[0-9]{1,12}$"', "malformed expiry"),
        _refuse('digest.base64url_nopad_hex(digest.hmac_sha256(req.http.X-Sig-Secret, '
                'regsub(req.url, "\\?.*$", "") + {"\n"} + std.integer(req.http.X-Sig-E, 0))) != req.http.X-Sig-S',
                "signature does not match"),
        _refuse("std.integer(req.http.X-Sig-E, 0) < std.integer(time=now)", "signed URL has expired"),
        "    unset req.http.X-Sig-K;\n    unset req.http.X-Sig-E;\n    unset req.http.X-Sig-S;\n"
        "    unset req.http.X-Sig-Secret;",
    ]
    return "\n".join(lines)


def render_vcl(settings, origin: str, path: Path) -> Path:
    host, _, port = origin.rpartition(":")
    policy = RefererPolicy.from_settings(settings)
    values = {
        "origin_host": host,
        "origin_port": port,
        "referer_pattern": negotiation.nginx_safe(policy.pattern),
        "allow_empty_referer": "true" if policy.allow_empty else "false",
        "signature_check": _signature_check(settings),
        "negotiated_url": negotiation.negotiated_url(settings.named_presets.names),
        "accept_class_chain": negotiation.vcl_accept_chain(),
        "variant_path": allowlist.variant_path(settings.widths, settings.thumb_sizes,
                                               presets=settings.named_presets.names),
        "refusal_chain": allowlist.vcl_refusal_chain(allowlist.refusals(settings.widths, settings.thumb_sizes,
                                                                        presets=settings.named_presets.names)),
        "preset_hash": presets.vcl_hash(settings.named_presets),
        "auto_url": hints.AUTO_URL,
        "hint_width": hints.vcl_recv_hints(settings.widths, settings.auto_width),
        "deliver_hints": hints.vcl_deliver_hints(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(fill(TEMPLATE.read_text(), values))
    path.chmod(0o600)
    return path


def varnishd_command(vcl: Path, listen: str, workdir: Path, memory: str = "128m") -> list[str]:
    """varnishd in the foreground, its state in workdir, no management port, no privilege jail."""
    return [VARNISHD, "-F", "-j", "none", "-n", str(workdir), "-a", listen, "-T", "none",
            "-f", str(vcl), "-s", f"malloc,{memory}"]
