"""The encoder qualities of a new content, chosen once to IMAGEHOST_QUALITY_PRICE and
IMAGEHOST_QUALITY_TARGET (origin/pipeline/targeting.py)
from the pixels its thumbnails start from, and kept with the content in the catalog.

The worker runs it once the content is ready (worker.choose_qualities); every later render of the
content encodes with them. Its eager thumbnails, cut before, and a content without them
(animations, a search that failed, no target configured) are encoded at the fixed qualities.
"""
from __future__ import annotations

import logging
from dataclasses import replace

from origin.config import quality_prices, quality_targets
from origin.pipeline import targeting
from origin.pipeline.render import Encoding
from origin.ports.catalog import Catalog, Content

log = logging.getLogger("imagehost.ingest")


def choose_and_store(catalog: Catalog, settings, content: Content, pixels: bytes) -> Content:
    """`content` with its qualities, stored; as it was when none are chosen for it."""
    targets, prices = quality_targets(settings.quality_target), quality_prices(settings.quality_price)
    if not (targets or prices) or content.pages > 1:
        return content
    try:
        chosen = targeting.choose(pixels, targets, Encoding.from_settings(settings), prices)
    except Exception:  # a picture the search cannot encode still gets the fixed qualities
        log.exception("content %s: the quality search failed; fixed qualities", content.id)
        return content
    catalog.set_qualities(content.id, chosen.to_json())
    log.info("content %s: qualities %s in %.0f ms", content.id, chosen.to_json(), chosen.ms)
    return replace(content, qualities=chosen.to_json())
