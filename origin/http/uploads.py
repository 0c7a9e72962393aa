"""POST /v1/uploads (ask for an upload URL) and PUT /v1/uploads/{id} (the local store's upload URL).

With the S3 store the client gets a presigned POST restricted to the exact key,
the size limit and the declared type, and uploads straight to the bucket; S3
then notifies the queue. With the local store the URL points at the origin
itself and carries a signed, expiring, single-use token.
"""
from __future__ import annotations

import json
import secrets
import time
from datetime import datetime, timezone

import falcon

from origin.errors import InvalidRequest, TooLarge, UnsupportedImage
from origin.formats import FORMATS
from origin.keys import upload_key
from origin.keys import check_id
from origin.ports.catalog import ImageRecord
from origin.security.apikeys import require_owner
from origin.security.upload_tokens import UploadGrant, UploadTokenRefused
from origin.security.webhooks import valid_callback

ACCEPTED_TYPES = {f.mime for f in FORMATS.values()} | {"image/heif", "image/jpg", "application/octet-stream", ""}
CHUNK = 1 << 20
WRITE_LEASE_SECONDS = 60  # if this process dies mid-write, a worker looks after this long


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


class LocalTarget:
    """Upload URL on the origin itself, with an itsdangerous token."""

    def __init__(self, tokens):
        self.tokens = tokens

    def target(self, base: str, image_id: str, max_bytes: int, content_type: str, expires_in: int) -> dict:
        token = self.tokens.issue(UploadGrant(image_id, max_bytes))
        return {
            "method": "PUT",
            "url": f"{base}/v1/uploads/{image_id}?token={token}",
            "headers": {"Content-Type": content_type or "application/octet-stream"},
        }


class S3Target:
    """Presigned POST straight to the bucket."""

    def __init__(self, store):
        self.store = store

    def target(self, base: str, image_id: str, max_bytes: int, content_type: str, expires_in: int) -> dict:
        post = self.store.presigned_post(upload_key(image_id), max_bytes, content_type or None, expires_in)
        return {"method": "POST", "url": post["url"], "fields": post["fields"]}


class UploadsResource:
    def __init__(self, settings, catalog, keys, target):
        self.settings = settings
        self.catalog = catalog
        self.keys = keys
        self.target = target

    def on_post(self, req, resp) -> None:
        owner = require_owner(self.keys, req.get_header("Authorization"))
        body = _json_object(req)
        filename = _text(body, "filename", 255)
        declared = _text(body, "content_type", 100).lower()
        callback = _text(body, "callback_url", 2000)
        size = body.get("size")
        limit = self.settings.max_upload_bytes
        if declared not in ACCEPTED_TYPES:
            raise UnsupportedImage(f"{declared!r} is not an image type this host accepts",
                                   accepted=sorted(t for t in ACCEPTED_TYPES if t.startswith("image/")))
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise InvalidRequest("size must be a non-negative integer (bytes)")
        if isinstance(size, int) and size > limit:
            raise TooLarge(f"{size} bytes is over the {limit}-byte limit", limit=limit)
        if callback and not valid_callback(callback):
            raise InvalidRequest("callback_url must be an http(s) URL")
        image_id = secrets.token_urlsafe(12)
        self.catalog.add(ImageRecord(
            id=image_id, content_type=declared if declared.startswith("image/") else "", width=0, height=0,
            bytes=0, sha256="", state="requested", owner=owner.name, filename=filename, callback_url=callback,
            created_at=datetime.now(timezone.utc),
            # the worker's log lines carry the id of the request that made the upload (http/observe.py)
            metadata=json.dumps({"request_id": getattr(req.context, "request_id", "")}),
        ))
        expires_in = self.settings.upload_url_seconds
        base = self.settings.public_base(req.prefix)
        answer = {"id": image_id, **self.target.target(base, image_id, limit, declared, expires_in)}
        answer.update(expires_at=_iso(time.time() + expires_in), max_bytes=limit,
                      status_url=f"{base}/v1/images/{image_id}")
        resp.status = falcon.HTTP_201
        resp.media = answer


class LocalUploadResource:
    """The upload URL of the local store: PUT the bytes, once, before the token expires."""

    def __init__(self, settings, catalog, store, queue, tokens):
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.queue = queue
        self.tokens = tokens

    def on_put(self, req, resp, image_id: str) -> None:
        check_id(image_id)
        grant = self.tokens.check(req.get_param("token") or "", image_id)
        length = req.content_length
        if length is not None and length > grant.max_bytes:
            raise TooLarge(f"{length} bytes is over the {grant.max_bytes}-byte limit", limit=grant.max_bytes)
        data = _read_bounded(req.bounded_stream, grant.max_bytes)
        if not data:
            raise InvalidRequest("the upload is empty")
        # the lease keeps workers off the image until its bytes are in the store
        self.catalog.release(image_id, WRITE_LEASE_SECONDS)
        # single use: only the request that moves `requested` on may write
        if not self.catalog.transition(image_id, ("requested",), "uploaded", bytes=len(data)):
            raise UploadTokenRefused("this upload URL has already been used")
        try:
            self.store.put(upload_key(image_id), data, "application/octet-stream")
        except Exception:
            self.catalog.transition(image_id, ("uploaded",), "requested")  # let the client try again
            raise
        self.catalog.release(image_id, 0)
        self.queue.send(image_id)
        base = self.settings.public_base(req.prefix)
        resp.status = falcon.HTTP_201
        resp.media = {"id": image_id, "state": "uploaded", "status_url": f"{base}/v1/images/{image_id}"}


def _read_bounded(stream, limit: int) -> bytes:
    parts, total = [], 0
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            return b"".join(parts)
        total += len(chunk)
        if total > limit:
            raise TooLarge(f"the upload is over the {limit}-byte limit", limit=limit)
        parts.append(chunk)


def _json_object(req) -> dict:
    if not req.content_length:
        return {}
    try:
        body = req.get_media()
    except falcon.MediaMalformedError:
        raise InvalidRequest("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


def _text(body: dict, name: str, limit: int) -> str:
    value = body.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidRequest(f"{name} must be a string of at most {limit} characters")
    return value
