"""Read what is left of a request body before answering an error.

The origin often refuses an upload from its headers alone (too large by Content-Length, a used or
forged token). Answering without reading the body makes gunicorn close the connection (it drains
no more than 64 KiB itself) while the sender is still sending it; the kernel answers the unread
bytes with a reset, which can destroy the answer before nginx has read it, and the client would get
the edge's "origin unavailable, retry later" for a request that can never succeed. Draining the rest
keeps the connection whole, so the client gets the real answer.

The drain is bounded: never more than the larger of the upload limit (plus a margin) and
CDN_BODY_LIMIT, the largest body a CDN in front commonly lets through (Cloudflare's 100 MB on its
Free and Pro plans). The imagehost edge already caps bodies at the upload limit; a CDN with a larger
cap of its own in front of the origin still has its 413 heard. A body over the bound is not read:
the connection is closed.
"""
from __future__ import annotations

MARGIN = 2 * 1024 * 1024
CDN_BODY_LIMIT = 100 * 1000 * 1000


def drain_bound(max_upload_bytes: int) -> int:
    return max(max_upload_bytes + MARGIN, CDN_BODY_LIMIT)


class DrainUnreadBody:
    def __init__(self, max_bytes: int):
        self.bound = drain_bound(max_bytes)

    def process_response(self, req, resp, resource, req_succeeded: bool) -> None:
        length = req.content_length
        if not length or length > self.bound:
            return
        stream = req.bounded_stream
        if not stream.eof:
            stream.exhaust()
