"""GET/HEAD /images/{id}/{variant}: the delivery contract (see pipeline/request.py)."""
from __future__ import annotations

from origin.pipeline.request import parse
from origin.presets import Presets
from origin.pipeline.variants import Delivery
from origin.security.referers import RefererPolicy
from origin.security.signing import SigningKeys, verify

CACHE_FOREVER = ["public", "max-age=31536000", "immutable"]


def cache_control(max_age: int | None) -> list[str]:
    """A year and immutable; or, for an answer that stands in for the final one (a fast format while
    the asked one renders, a stand-in while an archived source is restored), a short lifetime that
    the edge may serve stale while it fetches the final variant in the background."""
    if max_age is None:
        return CACHE_FOREVER
    return ["public", f"max-age={max_age}", f"stale-while-revalidate={max_age * 6}"]


def access_checks(settings) -> dict:
    """DeliveryResource's hotlink checks from settings (the edge runs the same ones first, hits included)."""
    referers = RefererPolicy.from_settings(settings)
    return {
        "referers": referers if referers.checks_anything else None,
        "signing": SigningKeys.parse(settings.signing_keys) if settings.signing_required else None,
    }


class DeliveryResource:
    def __init__(self, delivery: Delivery, widths: tuple[int, ...], thumb_sizes: tuple[int, ...],
                 referers: RefererPolicy | None = None, signing: SigningKeys | None = None,
                 presets: Presets = Presets()):
        self.delivery = delivery
        self.presets = presets
        self.widths = widths
        self.thumb_sizes = thumb_sizes
        self.referers = referers  # None: no Referer check
        self.signing = signing  # None: unsigned URLs are served

    def on_get(self, req, resp, image_id: str, variant: str) -> None:
        if self.referers is not None:
            self.referers.check(req.get_header("Referer"))
        if self.signing is not None:
            verify(self.signing, req.path, req.params)
        request = parse(image_id, variant, self.widths, self.thumb_sizes, self.presets)
        result = self.delivery.variant(request, req.get_header("Accept"))
        resp.etag = result.etag
        resp.cache_control = cache_control(result.max_age)
        resp.set_header("Server-Timing", result.timing)
        if result.negotiated:
            resp.vary = ["Accept"]
        matches = req.if_none_match or []
        if any(tag == "*" or tag == result.etag for tag in matches):
            resp.status = 304
            return
        resp.content_type = result.content_type
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.content_length = len(result.data)
        if req.method == "HEAD":
            return
        resp.data = result.data
        self.delivery.metrics.bytes_out.inc(len(result.data))

    on_head = on_get
