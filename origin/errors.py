"""Typed errors raised anywhere in the origin.

They carry no HTTP knowledge; `origin/http/errors.py` turns each into an answer.
"""
from __future__ import annotations


class ImagehostError(Exception):
    """Base of every error the origin raises on purpose."""

    code = "error"

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequest(ImagehostError):
    """The client asked for something malformed or not allowed (400)."""

    code = "invalid_request"


class Unauthorized(ImagehostError):
    """No credentials, or ones the host does not know (401)."""

    code = "unauthorized"


class Forbidden(ImagehostError):
    """Known, but not allowed: a reviewer-only action, a bad or expired signature or token (403)."""

    code = "forbidden"


class NotFound(ImagehostError):
    """No such image, or not one that may be served (404)."""

    code = "not_found"


class UnsupportedImage(ImagehostError):
    """The bytes are not an image type the host accepts (415 / refused at ingest)."""

    code = "unsupported_type"


class TooLarge(ImagehostError):
    """Bytes or pixels over the configured limits (413)."""

    code = "too_large"


class Unavailable(ImagehostError):
    """A backing service (store, catalog) cannot be reached right now (503)."""

    code = "unavailable"


class StoreUnavailable(Unavailable):
    code = "store_unavailable"


class CatalogUnavailable(Unavailable):
    code = "catalog_unavailable"


class SourceArchived(Unavailable):
    """What a request needs sits in an archive tier; a restore was requested (503 with Retry-After)."""

    code = "source_archived"

    def __init__(self, message: str, retry_after: int = 5, **details):
        super().__init__(message, retry_after=retry_after, **details)
        self.retry_after = retry_after


class RenderFailed(ImagehostError):
    """libvips could not decode or encode the image (the stored original is bad)."""

    code = "render_failed"
