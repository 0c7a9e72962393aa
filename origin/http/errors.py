"""The one place where errors become HTTP answers: JSON bodies, never a traceback."""
from __future__ import annotations

import logging

import falcon

from origin import errors

log = logging.getLogger("imagehost.http")

STATUS = {
    errors.InvalidRequest: falcon.HTTP_400,
    errors.NotFound: falcon.HTTP_404,
    errors.UnsupportedImage: falcon.HTTP_415,
    errors.TooLarge: falcon.HTTP_413,
    errors.Unavailable: falcon.HTTP_503,
    errors.Unauthorized: falcon.HTTP_401,
    errors.Forbidden: falcon.HTTP_403,
}
RETRY_AFTER_SECONDS = 5


def _status_for(exc: errors.ImagehostError) -> str:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return falcon.HTTP_500


def _answer(resp: falcon.Response, status: str, code: str, message: str, **details) -> None:
    resp.status = status
    resp.media = {"error": code, "message": message, **details}
    resp.cache_control = ["no-store"]


def handle_imagehost_error(req, resp, exc: errors.ImagehostError, params) -> None:
    status = _status_for(exc)
    if status == falcon.HTTP_500:
        log.error("%s %s failed: %s", req.method, req.path, exc, exc_info=exc)
        _answer(resp, status, exc.code, "the server could not complete the request")
        return
    if status == falcon.HTTP_401:
        resp.set_header("WWW-Authenticate", 'Bearer realm="imagehost"')
    if status == falcon.HTTP_503:
        resp.set_header("Retry-After", str(getattr(exc, "retry_after", None) or RETRY_AFTER_SECONDS))
        log.warning("%s %s: %s", req.method, req.path, exc)
    _answer(resp, status, exc.code, exc.message, **exc.details)


def handle_http_error(req, resp, exc: falcon.HTTPError, params) -> None:
    code = "_".join(word for word in (exc.title or "error").lower().split() if not word.isdigit())
    _answer(resp, exc.status, code, exc.description or exc.title or "error")
    for name, value in (exc.headers or {}).items():
        resp.set_header(name, value)


def handle_unexpected(req, resp, exc: Exception, params) -> None:
    log.error("%s %s failed", req.method, req.path, exc_info=exc)
    _answer(resp, falcon.HTTP_500, "internal_error", "the server could not complete the request")


def install(app: falcon.App) -> None:
    # Falcon picks the most specific handler, so the order here does not matter.
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(falcon.HTTPError, handle_http_error)
    app.add_error_handler(errors.ImagehostError, handle_imagehost_error)
