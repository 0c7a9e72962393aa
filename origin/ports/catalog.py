"""Catalog port: image records and their states.

Adapters: `catalog_sqlite.SqliteCatalog` (embedded default) and
`catalog_postgres.PostgresCatalog`. Both raise `RecordMissing` for an unknown id
and `origin.errors.CatalogUnavailable` when the database cannot be reached.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Protocol

from origin.errors import NotFound

# An image's life (see DESIGN.md). Only `ready` images are served publicly.
STATES = (
    "requested",
    "uploaded",
    "validating",
    "moderating",
    "processing",
    "ready",
    "quarantined",
    "held",
)
SERVABLE = "ready"


class RecordMissing(NotFound):
    code = "not_found"


@dataclass(frozen=True)
class ImageRecord:
    id: str
    content_type: str
    width: int
    height: int
    bytes: int
    sha256: str
    state: str = "ready"
    has_alpha: bool = False
    pages: int = 1
    created_at: datetime = datetime.fromtimestamp(0, timezone.utc)

    @property
    def servable(self) -> bool:
        return self.state == SERVABLE

    def with_state(self, state: str) -> "ImageRecord":
        return replace(self, state=state)


COLUMNS = ("id", "content_type", "width", "height", "bytes", "sha256", "state", "has_alpha", "pages", "created_at")


class Catalog(Protocol):
    def add(self, record: ImageRecord) -> None: ...

    def get(self, image_id: str) -> ImageRecord: ...

    def set_state(self, image_id: str, state: str) -> None: ...

    def delete(self, image_id: str) -> None: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


def check_state(state: str) -> str:
    if state not in STATES:
        raise ValueError(f"unknown state {state!r}")
    return state


def open_catalog(url: str) -> Catalog:
    """The adapter named by the URL's scheme."""
    if url.startswith(("postgresql://", "postgres://")):
        from origin.ports.catalog_postgres import PostgresCatalog

        return PostgresCatalog(url)
    from origin.ports.catalog_sqlite import SqliteCatalog

    return SqliteCatalog(url.removeprefix("sqlite:///"))
