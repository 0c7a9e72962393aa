"""Build the Falcon app from settings and ports. Where a request goes:

    /images/{id}/{variant}   http/delivery.py → pipeline/request, variants, render
    /healthz /readyz         http/health.py
    /metrics                 http/metrics.py
    errors                   http/errors.py (the one place they become answers)
"""
from __future__ import annotations

import falcon

from origin.config import Settings
from origin.errors import InvalidRequest
from origin.http import errors
from origin.http.delivery import DeliveryResource
from origin.http.health import HealthResource, ReadyResource
from origin.http.metrics import MetricsResource
from origin.metrics import Metrics, build_metrics
from origin.pipeline.variants import Delivery
from origin.ports.catalog import Catalog, open_catalog
from origin.ports.store import Store, open_store


def _malformed_image_path(req, resp, **kwargs) -> None:
    raise InvalidRequest("malformed image path: expected /images/{id}/{variant}", path=req.path[:200])


def create_app(settings: Settings, store: Store, catalog: Catalog, metrics: Metrics) -> falcon.App:
    app = falcon.App(media_type=falcon.MEDIA_JSON)
    app.req_options.strip_url_path_trailing_slash = False
    errors.install(app)
    delivery = Delivery(store, catalog, settings, metrics)
    app.add_route("/images/{image_id}/{variant}", DeliveryResource(delivery, settings.widths, settings.thumb_sizes))
    app.add_sink(_malformed_image_path, r"^/images(/|$)")
    app.add_route("/healthz", HealthResource())
    app.add_route("/readyz", ReadyResource(store, catalog))
    app.add_route("/metrics", MetricsResource(metrics))
    return app


def from_env() -> falcon.App:
    """The gunicorn entry point (`origin.app:from_env()`), called once in each worker."""
    settings = Settings.from_env()
    return create_app(settings, open_store(settings), open_catalog(settings.catalog), build_metrics())
