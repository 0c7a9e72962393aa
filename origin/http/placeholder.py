"""GET/HEAD /images/{id}/placeholder: the image's ThumbHash drawn as a tiny PNG at its aspect.

The same hotlink checks as every delivery URL (the edges run them first), cached for a year and
immutable like a variant, purged with them (origin/ports/cdn_nginx.py, edge/purge.js, the Varnish ban).
"""
from __future__ import annotations

import hashlib

from origin.http.delivery import cache_control
from origin.keys import check_id
from origin.pipeline.placeholders import Placeholders
from origin.security.referers import RefererPolicy
from origin.security.signing import SigningKeys, verify


class PlaceholderResource:
    def __init__(self, placeholders: Placeholders, referers: RefererPolicy | None = None,
                 signing: SigningKeys | None = None):
        self.placeholders = placeholders
        self.referers = referers
        self.signing = signing

    def on_get(self, req, resp, image_id: str) -> None:
        if self.referers is not None:
            self.referers.check(req.get_header("Referer"))
        if self.signing is not None:
            verify(self.signing, req.path, req.params)
        check_id(image_id)
        data = self.placeholders.png(image_id)
        etag = hashlib.blake2b(data, digest_size=16).hexdigest()
        resp.etag = etag
        resp.cache_control = cache_control(None)
        if any(tag == "*" or tag == etag for tag in req.if_none_match or []):
            resp.status = 304
            return
        resp.content_type = "image/png"
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.content_length = len(data)
        if req.method != "HEAD":
            resp.data = data

    on_head = on_get
