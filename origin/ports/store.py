"""Object store port: immutable blobs under predictable keys.

Adapters: `store_local.LocalStore` (embedded default) and `store_s3.S3Store`.
Every adapter makes a `put` atomic (a reader sees the old state or the whole new
object, never part of one), raises `KeyMissing` for an absent key and
`origin.errors.StoreUnavailable` when the backing service cannot be reached.

Tiers are S3's storage-class names. Every object sits in one; `put` places it by
its object class (`Placement`: an owner-only kept source goes cold at once),
`set_tier` moves it to a colder one, `objects` reports it. A read of an object in
a tier that needs a restore (GLACIER, DEEP_ARCHIVE) raises `ObjectArchived`;
`restore` asks for a readable copy. The local store keeps each tier in a
directory of its own and offers only the tiers that read at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol

from origin.errors import NotFound, StoreUnavailable
from origin.keys import object_class
from origin.tiers import ARCHIVED, INSTANT, TIERS, colder  # noqa: F401 (the port's vocabulary)


class KeyMissing(NotFound):
    """The store has no object under this key."""

    code = "key_missing"


class ObjectArchived(StoreUnavailable):
    """The object sits in a tier that must be restored before it can be read."""

    code = "archived"

    def __init__(self, message: str, key: str = "", tier: str = ""):
        super().__init__(message, tier=tier)
        self.key = key
        self.tier = tier


@dataclass(frozen=True)
class StoredObject:
    key: str  # relative to the store (no adapter prefix)
    size: int
    modified: float  # unix seconds
    tier: str = "STANDARD"


@dataclass(frozen=True)
class Restore:
    """Where a restore of an archived object stands."""

    state: str  # requested | in_progress | restored | not_archived
    tier: str = ""


@dataclass(frozen=True)
class Placement:
    """Where `put` writes an object of each class, and the tags it carries (origin/lifecycle/rules.py)."""

    tiers: tuple[tuple[str, str], ...] = ()  # (object class, tier): written straight to that tier
    min_bytes: int = 0  # smaller objects stay in STANDARD (cold tiers bill a minimum size)
    tags: tuple[tuple[str, str], ...] = ()  # (object class, "key=value"): lifecycle rules select on them

    def tier_for(self, key: str, size: int) -> str:
        if size < self.min_bytes:
            return "STANDARD"
        return dict(self.tiers).get(object_class(key), "STANDARD")

    def tagging_for(self, key: str) -> str:
        return dict(self.tags).get(object_class(key), "")


class Store(Protocol):
    def get(self, key: str) -> bytes: ...

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove one object; absent is fine."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under the folder `prefix`; return how many."""
        ...

    def folders(self, top: str) -> Iterator[str]:
        """Names of the folders directly under the folder `top` (e.g. content ids under images/)."""
        ...

    def objects(self, prefix: str) -> Iterator[StoredObject]:
        """Every object under the folder `prefix` (maintenance: compaction, sweeps)."""
        ...

    def set_tier(self, key: str, tier: str) -> None:
        """Move one object to `tier` (its age is kept); KeyMissing when absent."""
        ...

    def restore(self, key: str, days: int, speed: str) -> Restore:
        """Ask for a readable copy of an archived object for `days` (speed: Expedited | Standard | Bulk)."""
        ...

    def ping(self) -> None: ...
