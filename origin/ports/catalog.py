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
    owner: str = ""
    filename: str = ""
    callback_url: str = ""
    reason: str = ""  # machine-readable, when quarantined or held
    detail: str = ""  # the same for people
    metadata: str = "{}"  # JSON: what processing extracted (never served publicly)
    phash: int | None = None  # 64-bit perceptual hash, unsigned
    nsfw_score: float | None = None
    attempts: int = 0  # times a worker claimed it
    seq: int = 0  # insertion order, assigned by the catalog (list cursor)

    @property
    def servable(self) -> bool:
        return self.state == SERVABLE

    def with_state(self, state: str) -> "ImageRecord":
        return replace(self, state=state)


COLUMNS = (
    "id", "content_type", "width", "height", "bytes", "sha256", "state", "has_alpha", "pages", "created_at",
    "owner", "filename", "callback_url", "reason", "detail", "metadata", "phash", "nsfw_score", "attempts",
)
# columns `transition` may set beside the state
UPDATABLE = frozenset(COLUMNS) - {"id", "created_at", "owner", "attempts", "state"}


def check_fields(fields: dict) -> dict:
    unknown = set(fields) - UPDATABLE
    if unknown:
        raise ValueError(f"cannot update {sorted(unknown)}")
    return fields


def signed64(value: int | None) -> int | None:
    """An unsigned 64-bit hash as the signed integer databases store."""
    return None if value is None else value - (1 << 64) if value >= 1 << 63 else value


def unsigned64(value: int | None) -> int | None:
    return None if value is None else value + (1 << 64) if value < 0 else value


class Catalog(Protocol):
    def add(self, record: ImageRecord) -> None: ...

    def get(self, image_id: str) -> ImageRecord: ...

    def set_state(self, image_id: str, state: str) -> None: ...

    def transition(self, image_id: str, from_states: tuple[str, ...], to_state: str, **fields) -> bool:
        """Atomically move from one of `from_states` to `to_state`, setting `fields`; False if not in them."""
        ...

    def claim(self, states: tuple[str, ...], lease_seconds: float) -> ImageRecord | None:
        """Lease the oldest image in `states` whose lease has run out (a job for a worker)."""
        ...

    def release(self, image_id: str, delay_seconds: float) -> None:
        """End a lease; the image may be claimed again after `delay_seconds`."""
        ...

    def list_owner(self, owner: str, limit: int, before_seq: int | None = None) -> list[ImageRecord]: ...

    def list_state(self, state: str, limit: int) -> list[ImageRecord]: ...

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
