"""/healthz (the process answers) and /readyz (store and catalog reachable)."""
from __future__ import annotations

import falcon

from origin.errors import Unavailable


class HealthResource:
    def on_get(self, req, resp) -> None:
        resp.media = {"status": "ok"}
        resp.cache_control = ["no-store"]


class ReadyResource:
    def __init__(self, store, catalog):
        self.store = store
        self.catalog = catalog

    def on_get(self, req, resp) -> None:
        checks = {}
        for name, port in (("store", self.store), ("catalog", self.catalog)):
            try:
                port.ping()
                checks[name] = "ok"
            except Unavailable as exc:
                checks[name] = exc.message
        ready = all(v == "ok" for v in checks.values())
        resp.status = falcon.HTTP_200 if ready else falcon.HTTP_503
        if not ready:
            resp.set_header("Retry-After", "5")
        resp.media = {"status": "ready" if ready else "unavailable", "checks": checks}
        resp.cache_control = ["no-store"]
