"""Build the Falcon app from settings and ports. Where a request goes:

    /images/{id}/{variant}        http/delivery.py → pipeline/request, variants, render
    /images/{id}/placeholder      http/placeholder.py → pipeline/placeholders
    /v1/uploads[/{id}]            http/uploads.py  → the queue → ingest/worker.py
    /v1/images[/{id}[/original]]  http/images.py
    /v1/review[/{id}[/preview]]   http/review.py
    /openapi.json                 http/openapi.py
    / /gallery /review /static/*  http/static.py   (pages from origin/web/) and /v1/config
    /healthz /readyz /metrics     http/health.py, http/metrics.py
    errors                        http/errors.py (the one place they become answers)
"""
from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, replace
from functools import partial

import falcon

from origin import logs
from origin.config import Settings
from origin.errors import InvalidRequest
from origin.http import errors
from origin.http.delivery import DeliveryResource, access_checks
from origin.http.drain import DrainUnreadBody
from origin.http.health import HealthResource, ReadyResource
from origin.http.images import ImageListResource, ImageResource, OriginalDownloadResource, remove_image
from origin.http.metrics import LiveCollector, MetricsResource
from origin.http.observe import Observe
from origin.http.placeholder import PlaceholderResource
from origin.http.openapi import OpenApiResource
from origin.http.review import ReviewDecisionResource, ReviewPreviewResource, ReviewQueueResource
from origin.http.sign import SignResource
from origin.http.static import add_routes as add_web_routes
from origin.http.uploads import LocalTarget, LocalUploadResource, S3Target, UploadsResource
from origin.metrics import Metrics, build_metrics
from origin.pipeline.placeholders import Placeholders
from origin.pipeline.render import configure_libvips, threads_per_render
from origin.pipeline.variants import Delivery
from origin.ports.catalog import Catalog
from origin.ports.queue import Queue
from origin.ports.store import Store
from origin.security import dev_secrets
from origin.security.apikeys import ApiKeys
from origin.security.signing import SigningKeys
from origin.security.upload_tokens import UploadTokens
from origin.wiring import (hash_index_for, open_catalog, open_cdn, open_moderator, open_queue, open_scanner,
                           open_store)

log = logging.getLogger("imagehost")


@dataclass(frozen=True)
class Ports:
    store: Store
    catalog: Catalog
    metrics: Metrics
    queue: Queue
    cdn: object = None  # origin.ports.cdn: purges edge caches; None when no edge is configured


def _malformed_image_path(req, resp, **kwargs) -> None:
    raise InvalidRequest("malformed image path: expected /images/{id}/{variant}", path=req.path[:200])


def with_ephemeral_secrets(settings: Settings) -> Settings:
    """A single process may run without configured secrets; `imagehost serve` always sets them."""
    filled = {}
    if not settings.signing_keys:
        filled["signing_keys"] = SigningKeys.generate()
    if not settings.webhook_secret:
        filled["webhook_secret"] = secrets.token_urlsafe(32)
    return replace(settings, **filled) if filled else settings


def create_app(settings: Settings, store: Store, catalog: Catalog, metrics: Metrics, *,
               queue: Queue | None = None, cdn=None) -> falcon.App:
    settings = with_ephemeral_secrets(settings)
    queue = queue if queue is not None else open_queue(settings, catalog)
    app = falcon.App(media_type=falcon.MEDIA_JSON,
                     middleware=[Observe(metrics), DrainUnreadBody(settings.max_upload_bytes)])
    app.req_options.strip_url_path_trailing_slash = False
    errors.install(app)

    delivery = Delivery(store, catalog, settings, metrics)
    placeholders = Placeholders(delivery.records, delivery.store, catalog, settings.intermediate_sizes)
    app.add_route("/images/{image_id}/placeholder", PlaceholderResource(placeholders, **access_checks(settings)))
    app.add_route("/images/{image_id}/{variant}",
                  DeliveryResource(delivery, settings.widths, settings.thumb_sizes, **access_checks(settings),
                                   auto_width=settings.auto_width, presets=settings.named_presets))
    app.add_sink(_malformed_image_path, r"^/images(/|$)")

    api_keys = ApiKeys.from_settings(settings)
    signing_keys = SigningKeys.parse(settings.signing_keys)
    tokens = UploadTokens(signing_keys.current[1] + settings.webhook_secret, settings.upload_url_seconds)
    target = S3Target(store) if settings.store == "s3" else LocalTarget(tokens)
    remover = partial(remove_image, store, catalog, cdn, delivery.forget)
    app.add_route("/v1/uploads", UploadsResource(settings, catalog, api_keys, target))
    app.add_route("/v1/uploads/{image_id}", LocalUploadResource(settings, catalog, store, queue, tokens))
    app.add_route("/v1/images", ImageListResource(settings, catalog, api_keys))
    app.add_route("/v1/images/{image_id}", ImageResource(settings, catalog, api_keys, remover))
    app.add_route("/v1/images/{image_id}/original", OriginalDownloadResource(settings, catalog, api_keys, store))
    app.add_route("/v1/review", ReviewQueueResource(settings, catalog, api_keys, signing_keys))
    app.add_route("/v1/review/{image_id}", ReviewDecisionResource(catalog, api_keys, queue, remover))
    app.add_route("/v1/review/{image_id}/preview", ReviewPreviewResource(settings, catalog, store, signing_keys))
    app.add_route("/openapi.json", OpenApiResource())
    app.add_route("/v1/sign", SignResource(settings, api_keys))
    add_web_routes(app, settings)  # the browser pages and /v1/config

    app.add_route("/healthz", HealthResource())
    app.add_route("/readyz", ReadyResource(store, catalog))
    app.add_route("/metrics", MetricsResource(metrics, live=[LiveCollector(store, catalog, cdn)]))
    return app


def open_ports(settings: Settings) -> Ports:
    metrics = build_metrics()
    store = open_store(settings, metrics)
    catalog = open_catalog(settings.catalog)
    return Ports(store, catalog, metrics, open_queue(settings, catalog), cdn=open_cdn(settings))


def start_workers(settings: Settings, ports: Ports):
    """In-process worker threads (the embedded default: IMAGEHOST_QUEUE=local)."""
    from origin.ingest.worker import Pipeline, start_threads

    moderator = open_moderator(settings.moderation)
    if hasattr(moderator, "load"):
        moderator.load()  # the first upload should not pay for loading the model
    pipe = Pipeline(settings, ports.store, ports.catalog, ports.queue, open_scanner(settings), moderator,
                    ports.metrics, hash_index_for(settings.catalog))
    return start_threads(pipe, settings.worker_threads)


def from_env() -> falcon.App:
    """The gunicorn entry point (`origin.app:from_env()`), called once in each worker."""
    logs.configure()  # JSON lines on stderr: requests, job steps, the rest
    settings, _ = dev_secrets.ensure(Settings.from_env())  # every worker reads the same secrets
    # every gunicorn worker renders IMAGEHOST_RENDER_CONCURRENCY at once
    renders = (settings.workers or os.cpu_count() or 1) * settings.render_concurrency
    configure_libvips(threads_per_render(settings.vips_threads, renders))
    ports = open_ports(settings)
    if settings.queue == "local" and settings.worker_threads > 0:
        start_workers(settings, ports)
    return create_app(settings, ports.store, ports.catalog, ports.metrics, queue=ports.queue, cdn=ports.cdn)
