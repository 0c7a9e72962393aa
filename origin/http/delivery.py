"""GET/HEAD /images/{id}/{variant}: the delivery contract (see pipeline/request.py)."""
from __future__ import annotations

from origin.pipeline import hints as client_hints
from origin.pipeline.request import parse
from origin.pipeline.variants import Delivery
from origin.presets import Presets
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


def check_access(req, referers: RefererPolicy | None, signing: SigningKeys | None) -> None:
    """The hotlink checks of every delivery URL: the Referer allow-list and, when required, the signature."""
    if referers is not None:
        referers.check(req.get_header("Referer"))
    if signing is not None:
        verify(signing, req.path, req.params)


def send(req, resp, data: bytes, content_type: str, etag: str) -> bool:
    """The bytes under their strong ETag, or a 304 when If-None-Match names it; True when the body
    went out (not a 304, not a HEAD)."""
    resp.etag = etag
    if any(tag == "*" or tag == etag for tag in req.if_none_match or []):
        resp.status = 304
        return False
    resp.content_type = content_type
    resp.set_header("X-Content-Type-Options", "nosniff")
    resp.content_length = len(data)
    if req.method == "HEAD":
        return False
    resp.data = data
    return True


class DeliveryResource:
    def __init__(self, delivery: Delivery, widths: tuple[int, ...], thumb_sizes: tuple[int, ...],
                 referers: RefererPolicy | None = None, signing: SigningKeys | None = None,
                 auto_width: int = 1200, presets: Presets = Presets()):
        self.delivery = delivery
        self.auto_width = auto_width  # /auto without usable hints (pipeline/hints.py)
        self.presets = presets
        self.widths = widths
        self.thumb_sizes = thumb_sizes
        self.referers = referers  # None: no Referer check
        self.signing = signing  # None: unsigned URLs are served

    def on_get(self, req, resp, image_id: str, variant: str) -> None:
        check_access(req, self.referers, self.signing)
        request = parse(image_id, variant, self.widths, self.thumb_sizes, self.presets)
        hints = None
        if request.kind == "auto":
            hints = client_hints.parse(req.get_header("Sec-CH-Width"), req.get_header("Sec-CH-DPR"),
                                       req.get_header("Sec-CH-Viewport-Width"))
            request = client_hints.resolve(request, hints, self.widths, self.auto_width)
        result = self.delivery.variant(request, req.get_header("Accept"))
        resp.cache_control = cache_control(result.max_age)
        resp.set_header("Server-Timing", result.timing)
        if result.negotiated:
            resp.vary = ["Accept"]
        if hints is not None:
            self._hint_headers(resp, request, hints, result.negotiated)
        if send(req, resp, result.data, result.content_type, result.etag):
            self.delivery.metrics.bytes_out.inc(len(result.data))

    on_head = on_get

    def _hint_headers(self, resp, request, hints, negotiated: bool) -> None:
        """What /auto's answer varies on, the width it serves (never upscaled) and its Content-DPR."""
        resp.vary = list(client_hints.VARY if negotiated else client_hints.VARY[1:])
        served = min(request.size, self.delivery.record(request.image_id).width)
        resp.set_header("X-Image-Width", str(served))
        ratio = client_hints.content_dpr(served, hints)
        if ratio is not None:
            resp.set_header("Content-DPR", ratio)
