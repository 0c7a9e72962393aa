"""The owner's view of their images: /v1/images, /v1/images/{id}, /v1/images/{id}/original."""
from __future__ import annotations

import json

import falcon

from origin import keys
from origin.errors import NotFound
from origin.formats import BY_MIME
from origin.ingest.compact import reclaim
from origin.keys import check_id, quarantine_key, upload_key
from origin.lifecycle import restore
from origin.pipeline import fallback, placeholders
from origin.pipeline.variants import owner_source_key
from origin.ports.catalog import RecordMissing
from origin.security.apikeys import require_owner

PAGE_DEFAULT, PAGE_MAX = 50, 200
MAX_CURSOR = 2**62  # cursors are catalog sequence numbers


def describe(record, base: str, widths, thumb_sizes, content=None, presets=()) -> dict:
    """The JSON form of a record for its owner (`content`: the one it serves, for its placeholder)."""
    out = {
        "id": record.id,
        "state": record.state,
        "filename": record.filename,
        "created_at": record.created_at.isoformat(timespec="seconds"),
        "status_url": f"{base}/v1/images/{record.id}",
    }
    if record.reason:
        out["reason"] = record.reason
        out["detail"] = record.detail
    if record.nsfw_score is not None:
        out["moderation_score"] = round(record.nsfw_score, 4)
    if record.state == "ready":
        root = f"{base}/images/{record.id}"
        out.update(
            width=record.width,
            height=record.height,
            bytes=record.bytes,
            content_type=record.content_type,
            sha256=record.sha256,
            phash=f"{record.phash:016x}" if record.phash is not None else None,
            metadata=json.loads(record.metadata or "{}"),
            urls={
                "original": f"{root}/original",
                "download": f"{base}/v1/images/{record.id}/original",
                "widths": {f"w{w}": f"{root}/w{w}" for w in widths},
                "square": {f"sq{s}": f"{root}/sq{s}" for s in thumb_sizes},
                "smart": {f"sm{s}": f"{root}/sm{s}" for s in thumb_sizes},
                "presets": {p.name: f"{root}/{p.name}" for p in presets},
            },
            srcset=", ".join(f"{root}/w{w} {w}w" for w in widths if w <= max(record.width, min(widths))),
        )
        out["urls"]["auto"] = f"{root}/auto"  # the width from client hints (pipeline/hints.py)
        out["urls"]["placeholder"] = f"{root}/placeholder"
        out.update(placeholder_fields(content))
    return out


def placeholder_fields(content) -> dict:
    """The ThumbHash (base64) and its decoded PNG as a data: URI, at the served picture's aspect; null
    until made (an image from before placeholders: its placeholder URL makes it on first request)."""
    if content is None or not content.thumbhash:
        return {"thumbhash": None, "placeholder": None}
    return {"thumbhash": content.thumbhash,
            "placeholder": placeholders.data_uri(content.thumbhash, content.width, content.height)}


def content_of(catalog, record):
    if record.state != "ready" or not record.content_id:
        return None
    return catalog.get_contents([record.content_id]).get(record.content_id)


class OwnedImages:
    """Shared: find a record that belongs to the caller (anyone else gets 404, not 403)."""

    def __init__(self, settings, catalog, api_keys):
        self.settings = settings
        self.catalog = catalog
        self.api_keys = api_keys

    def owned(self, req, image_id: str):
        owner = require_owner(self.api_keys, req.get_header("Authorization"))
        check_id(image_id)
        try:
            record = self.catalog.get(image_id)
        except RecordMissing:
            raise NotFound("no such image", image_id=image_id) from None
        if record.owner != owner.name:
            raise NotFound("no such image", image_id=image_id)
        return record

    def base(self, req) -> str:
        return self.settings.public_base(req.prefix)


class ImageListResource(OwnedImages):
    def on_get(self, req, resp) -> None:
        owner = require_owner(self.api_keys, req.get_header("Authorization"))
        limit = req.get_param_as_int("limit", min_value=1, max_value=PAGE_MAX, default=PAGE_DEFAULT)
        cursor = req.get_param_as_int("cursor", min_value=0, max_value=MAX_CURSOR)
        records = self.catalog.list_owner(owner.name, limit + 1, cursor)
        page, more = records[:limit], len(records) > limit
        base = self.base(req)
        contents = self.catalog.get_contents([r.content_id for r in page if r.state == "ready" and r.content_id])
        resp.media = {
            "items": [describe(r, base, self.settings.widths, self.settings.thumb_sizes, contents.get(r.content_id),
                               self.settings.named_presets)
                      for r in page],
            "next_cursor": page[-1].seq if more else None,
        }


class ImageResource(OwnedImages):
    def __init__(self, settings, catalog, api_keys, remover):
        super().__init__(settings, catalog, api_keys)
        self.remover = remover

    def on_get(self, req, resp, image_id: str) -> None:
        record = self.owned(req, image_id)
        resp.media = describe(record, self.base(req), self.settings.widths, self.settings.thumb_sizes,
                              content_of(self.catalog, record), self.settings.named_presets)
        resp.cache_control = ["private", "no-store"]

    def on_delete(self, req, resp, image_id: str) -> None:
        self.remover(self.owned(req, image_id).id)
        resp.status = falcon.HTTP_204


class OriginalDownloadResource(OwnedImages):
    """The untouched upload, metadata and all: for its owner only."""

    def __init__(self, settings, catalog, api_keys, store):
        super().__init__(settings, catalog, api_keys)
        self.store = store

    def on_get(self, req, resp, image_id: str) -> None:
        record = self.owned(req, image_id)
        if record.state in ("requested", "uploaded", "validating", "quarantined"):
            raise NotFound("the original is not available in this state", state=record.state)
        fmt = BY_MIME[record.content_type]
        # its content's source is the same bytes; an archived one is asked back (503 with Retry-After)
        resp.data = restore.read(self.store, owner_source_key(record), self.settings)
        resp.content_type = fmt.mime
        name = record.filename or f"{record.id}.{fmt.ext}"
        resp.downloadable_as = name
        resp.cache_control = ["private", "no-store"]


def remove_image(store, catalog, cdn, forget, image_id: str) -> None:
    """Delete an image everywhere: the record first (it stops serving; in the same transaction its
    content's reference count drops, and at zero the content turns `deleting`, so no upload can
    attach to it any more), then the bytes nobody else uses, then the edge caches.

    A crash between the steps leaves no record pointing at deleted bytes: what is left behind is
    a `deleting` content or an unused kept source, which `imagehost compact` reclaims. The record
    fallback goes before the record (origin/pipeline/fallback.py): if the store refuses, nothing
    was deleted."""
    fallback.remove(store, image_id)
    removed = catalog.remove_record(image_id)
    forget(image_id)
    if removed is not None:
        record = removed.record
        if not record.content_id:  # made before contents existed: the folder is its own
            store.delete_prefix(keys.prefix(record.id))
        elif removed.content is not None and removed.content.state == "deleting":
            # no record moved away from it within the grace (a repoint takes every record at once,
            # so a content released by deletions was never repointed): nobody can read it any more
            reclaim(store, catalog, removed.content)
        if removed.source_orphaned:  # a kept source (sources/{content}/) nobody downloads any more
            store.delete_prefix(record.source_key.rsplit("/", 1)[0] + "/")
    store.delete(upload_key(image_id))
    store.delete_prefix(quarantine_key(image_id).rsplit("/", 1)[0] + "/")
    if cdn is not None:
        cdn.purge(image_id)
