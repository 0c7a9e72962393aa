"""Hotlink protection: the Referer allow-list, shared by the origin and the edges.

IMAGEHOST_REFERERS is a comma-separated host list: `example.com` matches that
host exactly, `*.example.com` any host below it (not example.com itself; list
both for both). A Referer passes when it is an http(s) URL whose host is listed
(any port). IMAGEHOST_ALLOW_EMPTY_REFERER decides a missing or empty Referer
(browsers send none for typed URLs, and privacy settings strip it). An empty
list allows every non-empty Referer.

The origin uses `RefererPolicy.allows`; the nginx map and the Varnish VCL are
rendered from `RefererPolicy.pattern`, the very regular expression `allows`
uses, so the three cannot disagree.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from origin.errors import Forbidden

HOST_CHARS = re.compile(r"^[a-z0-9.-]+$")


class HotlinkRefused(Forbidden):
    """A Referer outside the allow-list, or an empty one where those are refused (403)."""

    code = "hotlink_refused"


def _host_pattern(entry: str) -> str:
    if entry.startswith("*."):
        return r"[^/:?#@\s]+\." + re.escape(entry[2:])
    return re.escape(entry)


def parse_hosts(text: str) -> tuple[str, ...]:
    hosts = []
    for item in text.split(","):
        entry = item.strip().lower()
        if not entry:
            continue
        bare = entry[2:] if entry.startswith("*.") else entry
        if not bare or not HOST_CHARS.fullmatch(bare) or bare.startswith((".", "-")):
            raise ValueError(f"referer allow-list entry {item.strip()!r} is not a host name (or *.host)")
        hosts.append(entry)
    return tuple(hosts)


@dataclass(frozen=True)
class RefererPolicy:
    hosts: tuple[str, ...]  # empty: every non-empty Referer passes
    allow_empty: bool

    @classmethod
    def from_settings(cls, settings) -> "RefererPolicy":
        return cls(parse_hosts(settings.referers), settings.allow_empty_referer)

    @property
    def checks_anything(self) -> bool:
        return bool(self.hosts) or not self.allow_empty

    @property
    def pattern(self) -> str:
        """Case-insensitive regex a non-empty Referer must match (PCRE, Python and VCL alike)."""
        if not self.hosts:
            return r"^."
        names = "|".join(_host_pattern(h) for h in self.hosts)
        return r"^https?://(?:" + names + r")(?::[0-9]*)?(?:[/?#]|$)"

    def allows(self, referer: str | None) -> bool:
        value = (referer or "").strip()
        if not value:
            return self.allow_empty
        return re.search(self.pattern, value, re.IGNORECASE) is not None

    def check(self, referer: str | None) -> None:
        if not self.allows(referer):
            raise HotlinkRefused(
                "this image may not be embedded here" if (referer or "").strip()
                else "this image needs a Referer from an allowed site"
            )
