"""CDN port: forget every cached variant of an image at every edge.

Adapter: `cdn_nginx.EdgePurger`, which fans out to every base URL in
IMAGEHOST_PURGE_URLS (the nginx edges of edge/, or Varnish with edge/imagehost.vcl:
both answer `POST /purge/images/{id}` from loopback) and keeps a durable retry
list for edges that are down. No URLs configured: no edge to purge (None).
"""
from __future__ import annotations

from typing import Protocol


class Cdn(Protocol):
    def purge(self, image_id: str) -> None:
        """Purge every variant of image_id everywhere; an edge that is down is retried later, never forgotten."""
        ...
