"""The review queue (reviewer keys): held images, a signed preview, approve or reject."""
from __future__ import annotations

from origin.errors import InvalidRequest, NotFound
from origin.ingest.review import approve
from origin.pipeline.render import Encoding, RenderOptions, render
from origin.keys import check_id
from origin.pipeline.records import served_record
from origin.pipeline.variants import render_source_key
from origin.ports.catalog import RecordMissing
from origin.security import signing
from origin.security.apikeys import require_reviewer

PREVIEW_SECONDS = 600
PREVIEW_WIDTH = 600


class ReviewQueueResource:
    def __init__(self, settings, catalog, api_keys, signing_keys):
        self.settings = settings
        self.catalog = catalog
        self.api_keys = api_keys
        self.signing_keys = signing_keys

    def on_get(self, req, resp) -> None:
        require_reviewer(self.api_keys, req.get_header("Authorization"))
        limit = req.get_param_as_int("limit", min_value=1, max_value=200, default=50)
        base = self.settings.public_base(req.prefix)
        items = []
        for record in self.catalog.list_state("held", limit):
            path = f"/v1/review/{record.id}/preview"
            items.append({
                "id": record.id,
                "owner": record.owner,
                "filename": record.filename,
                "score": record.nsfw_score,
                "detail": record.detail,
                "width": record.width,
                "height": record.height,
                "created_at": record.created_at.isoformat(timespec="seconds"),
                "preview_url": base + signing.sign_path(self.signing_keys, path, PREVIEW_SECONDS),
            })
        resp.media = {"items": items}
        resp.cache_control = ["private", "no-store"]


class ReviewDecisionResource:
    def __init__(self, catalog, api_keys, queue, remover):
        self.catalog = catalog
        self.api_keys = api_keys
        self.queue = queue
        self.remover = remover

    def on_post(self, req, resp, image_id: str) -> None:
        reviewer = require_reviewer(self.api_keys, req.get_header("Authorization"))
        check_id(image_id)
        body = req.get_media(default_when_empty={}) if req.content_length else {}
        action = body.get("action") if isinstance(body, dict) else None
        if action not in ("approve", "reject"):
            raise InvalidRequest('body must be {"action": "approve"} or {"action": "reject"}')
        try:
            record = self.catalog.get(image_id)
        except RecordMissing:
            raise NotFound("no such image", image_id=image_id) from None
        if record.state != "held":
            raise NotFound("this image is not waiting for review", state=record.state)
        if action == "approve":
            approve(self.catalog, self.queue, image_id, reviewer.name)
            resp.media = {"id": image_id, "state": "processing"}
        else:
            self.remover(image_id)
            resp.media = {"id": image_id, "state": "deleted"}


class ReviewPreviewResource:
    """A non-public preview of a held image, by signed URL (no key: an <img> can show it)."""

    def __init__(self, settings, catalog, store, signing_keys):
        self.catalog = catalog
        self.store = store
        self.signing_keys = signing_keys
        self.encoding = Encoding.from_settings(settings)

    def on_get(self, req, resp, image_id: str) -> None:
        check_id(image_id)
        signing.verify(self.signing_keys, req.path, req.params)
        try:
            record = self.catalog.get(image_id)
        except RecordMissing:
            raise NotFound("no such image", image_id=image_id) from None
        if record.state != "held":
            raise NotFound("this image is not waiting for review", state=record.state)
        record = served_record(self.catalog, record)  # an alias shows its content
        source = self.store.get(render_source_key(record))
        options = RenderOptions("w", PREVIEW_WIDTH, "webp", record.width, record.height)
        resp.data = render(source, options, self.encoding)
        resp.content_type = "image/webp"
        resp.cache_control = ["private", "no-store"]
