"""GET/HEAD /images/{id}/placeholder: the image's ThumbHash drawn as a tiny PNG at its aspect.

The same hotlink checks as every delivery URL (the edges run them first), cached for a year and
immutable like a variant, purged with them (origin/ports/cdn_nginx.py, edge/purge.js, the Varnish ban).
"""
from __future__ import annotations

import hashlib

from origin.http.delivery import cache_control, check_access, send
from origin.keys import check_id
from origin.pipeline.placeholders import Placeholders
from origin.security.referers import RefererPolicy
from origin.security.signing import SigningKeys


class PlaceholderResource:
    def __init__(self, placeholders: Placeholders, referers: RefererPolicy | None = None,
                 signing: SigningKeys | None = None):
        self.placeholders = placeholders
        self.referers = referers
        self.signing = signing

    def on_get(self, req, resp, image_id: str) -> None:
        check_access(req, self.referers, self.signing)
        check_id(image_id)
        data = self.placeholders.png(image_id)
        resp.cache_control = cache_control(None)
        send(req, resp, data, "image/png", hashlib.blake2b(data, digest_size=16).hexdigest())

    on_head = on_get
