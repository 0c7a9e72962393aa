"""The browser pages (origin/web/) and GET /v1/config, the public facts they need.

    /                 index.html     upload: pick or drop files, progress, live state
    /gallery          gallery.html   the owner's images, metadata, variant URLs, <img srcset> snippet
    /review           review.html    the review queue (reviewer key)
    /static/{name}    style.css, the JS modules, icon.svg
    /v1/config        {max_bytes, widths, thumb_sizes, auto, presets, signing_required, accepted_types}

The files are read once when the app is built (a few KiB) and served with their
content type, a strong ETag (304 on If-None-Match) and a short Cache-Control:
pages revalidate every time, assets after a few minutes. Every answer carries a
Content-Security-Policy that allows no inline script or style; the only other
origins it names are the public base URL (images the API hands out) and, with
the S3 store, the bucket's endpoint (presigned POST uploads).

The pages ask for client hints (Accept-CH: the DPR, the image's width, the viewport's width) so
that their `/images/{id}/auto` requests carry them (pipeline/hints.py). A browser sends them to
the page's own origin only; Permissions-Policy delegates them to the public base URL when that is
another origin (images on a CDN host).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from origin.errors import NotFound
from origin.http.uploads import ACCEPTED_TYPES

WEB = Path(__file__).resolve().parent.parent / "web"
PAGES = {"/": "index.html", "/gallery": "gallery.html", "/review": "review.html"}
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
PAGE_CACHE = ["no-cache"]  # always revalidated (ETag): a new release shows at once
ASSET_CACHE = ["public", "max-age=300"]
ACCEPT_CH = "Sec-CH-DPR, Sec-CH-Width, Sec-CH-Viewport-Width"
HINT_FEATURES = ("ch-dpr", "ch-width", "ch-viewport-width")


@dataclass(frozen=True)
class WebFile:
    data: bytes
    content_type: str
    etag: str


def load(directory: Path = WEB) -> dict[str, WebFile]:
    files = {}
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.suffix in TYPES:
            data = path.read_bytes()
            files[path.name] = WebFile(data, TYPES[path.suffix], hashlib.sha256(data).hexdigest()[:32])
    return files


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else ""


def upload_origins(settings) -> list[str]:
    """Where a browser sends upload bytes besides this origin: the bucket of a presigned POST."""
    if settings.store != "s3":
        return []
    if settings.s3_endpoint_url:
        return [_origin(settings.s3_endpoint_url)]
    bucket, region = settings.s3_bucket, settings.s3_region
    return [f"https://{bucket}.s3.amazonaws.com", f"https://{bucket}.s3.{region}.amazonaws.com"]


def content_security_policy(settings) -> str:
    public = [o for o in [_origin(settings.public_base_url)] if o]
    images = " ".join(["'self'", "blob:", "data:", *public])
    connect = " ".join(dict.fromkeys(["'self'", *public, *upload_origins(settings)]))
    return (f"default-src 'self'; script-src 'self'; style-src 'self'; img-src {images}; "
            f"connect-src {connect}; object-src 'none'; base-uri 'self'; form-action 'self'; "
            "frame-ancestors 'none'")


def permissions_policy(settings) -> str:
    """The client hints a page's image requests may carry: this origin's, and the public base URL's."""
    allowed = " ".join(["self", *(f'"{o}"' for o in [_origin(settings.public_base_url)] if o)])
    return ", ".join(f"{feature}=({allowed})" for feature in HINT_FEATURES)


class StaticFiles:
    """The pages and their assets: GET and HEAD, ETag, CSP."""

    def __init__(self, settings, directory: Path = WEB):
        self.files = load(directory)
        self.csp = content_security_policy(settings)
        self.permissions = permissions_policy(settings)

    def send(self, req, resp, name: str, cache_control: list[str]) -> None:
        item = self.files.get(name)
        if item is None:
            raise NotFound("no such file", path=req.path[:200])
        resp.set_header("Content-Security-Policy", self.csp)
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.cache_control = cache_control
        resp.etag = item.etag
        if any(tag == "*" or tag == item.etag for tag in req.if_none_match or []):
            resp.status = 304
            return
        resp.content_type = item.content_type
        resp.content_length = len(item.data)
        if req.method != "HEAD":
            resp.data = item.data


class PageResource:
    def __init__(self, files: StaticFiles, name: str):
        self.files = files
        self.name = name

    def on_get(self, req, resp) -> None:
        resp.set_header("Accept-CH", ACCEPT_CH)
        resp.set_header("Permissions-Policy", self.files.permissions)
        self.files.send(req, resp, self.name, PAGE_CACHE)

    on_head = on_get


class AssetResource:
    def __init__(self, files: StaticFiles):
        self.files = files

    def on_get(self, req, resp, name: str) -> None:
        if name.endswith(".html"):  # a page has one URL: its own path
            raise NotFound("no such file", path=req.path[:200])
        self.files.send(req, resp, name, ASSET_CACHE)

    on_head = on_get


class ConfigResource:
    """GET /v1/config: what a client needs before it uploads or builds URLs. Public, no key."""

    def __init__(self, settings):
        self.document = {
            "max_bytes": settings.max_upload_bytes,
            "widths": list(settings.widths),
            "thumb_sizes": list(settings.thumb_sizes),
            "auto": {"path": "/images/{id}/auto", "default_width": settings.auto_width,
                     "client_hints": ["Sec-CH-Width", "Sec-CH-DPR", "Sec-CH-Viewport-Width"]},
            "presets": [p.describe() for p in settings.named_presets],
            "signing_required": settings.signing_required,
            "accepted_types": sorted(t for t in ACCEPTED_TYPES if t.startswith("image/")),
        }

    def on_get(self, req, resp) -> None:
        resp.media = self.document
        resp.cache_control = ["public", "max-age=60"]


def add_routes(app, settings) -> None:
    files = StaticFiles(settings)
    for path, name in PAGES.items():
        app.add_route(path, PageResource(files, name))
    app.add_route("/static/{name}", AssetResource(files))
    app.add_route("/v1/config", ConfigResource(settings))
