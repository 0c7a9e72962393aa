"""Every request: an id, one JSON log line, and the request metrics (a Falcon middleware).

The request id is the edge's `X-Request-Id` (nginx sets it: nginx/edge.conf.template), or a
fresh one when the request came straight to the origin or carried none that is sane; it is
returned as `X-Request-Id`, kept on `req.context.request_id` (uploads store it with the image,
so the worker's log lines carry it too) and written in the line:

    {"msg": "request", "request_id": …, "method": "GET", "route": "/images/{image_id}/{variant}",
     "path": "/images/…/w300.webp", "status": 200, "ms": 3.1, "bytes": 10423}

The path is logged without its query string: query strings carry upload tokens and URL
signatures. Headers are never logged (Authorization holds API keys).
"""
from __future__ import annotations

import logging
import secrets
import time

from origin.logs import event, request_id

log = logging.getLogger("imagehost.request")


class Observe:
    def __init__(self, metrics):
        self.metrics = metrics

    def process_request(self, req, resp) -> None:
        req.context.started = time.perf_counter()
        req.context.request_id = request_id(req.get_header("X-Request-Id")) or secrets.token_hex(8)

    def process_response(self, req, resp, resource, req_succeeded: bool) -> None:
        started = getattr(req.context, "started", None)
        seconds = time.perf_counter() - started if started is not None else 0.0
        rid = getattr(req.context, "request_id", "")
        resp.set_header("X-Request-Id", rid)
        route = req.uri_template or "(unrouted)"
        status = resp.status_code if hasattr(resp, "status_code") else int(str(resp.status).split()[0])
        if self.metrics is not None and self.metrics.http_requests is not None:
            self.metrics.http_requests.labels(route=route, method=req.method, status=str(status)).inc()
            self.metrics.http_seconds.labels(route=route).observe(seconds)
        body = resp.data if resp.data is not None else None
        event(log, "request", request_id=rid, method=req.method, route=route, path=req.path[:300], status=status,
              ms=round(1000 * seconds, 2), bytes=len(body) if body is not None else resp.content_length)
