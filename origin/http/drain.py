"""Read what is left of a request body before answering an error.

The origin often refuses an upload from its headers alone (too large by Content-Length, a used or
forged token). Answering without reading the body makes gunicorn close the connection while the
edge is still sending it; nginx's send then fails, and the client would get the edge's "origin
unavailable, retry later" for a request that can never succeed. Draining the rest (bounded: never
more than the upload limit and a margin, which the edge already caps) keeps the connection whole,
so the client gets the real answer. A body over the bound is not read: the connection is closed.
"""
from __future__ import annotations

MARGIN = 2 * 1024 * 1024


class DrainUnreadBody:
    def __init__(self, max_bytes: int):
        self.bound = max_bytes + MARGIN

    def process_response(self, req, resp, resource, req_succeeded: bool) -> None:
        length = req.content_length
        if not length or length > self.bound:
            return
        stream = req.bounded_stream
        if not stream.eof:
            stream.exhaust()
