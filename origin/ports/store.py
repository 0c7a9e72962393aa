"""Object store port: immutable blobs under predictable keys.

Adapters: `store_local.LocalStore` (embedded default) and `store_s3.S3Store`.
Every adapter makes a `put` atomic (a reader sees the old state or the whole new
object, never part of one), raises `KeyMissing` for an absent key and
`origin.errors.StoreUnavailable` when the backing service cannot be reached.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol

from origin.errors import NotFound


class KeyMissing(NotFound):
    """The store has no object under this key."""

    code = "key_missing"


@dataclass(frozen=True)
class StoredObject:
    key: str  # relative to the store (no adapter prefix)
    size: int
    modified: float  # unix seconds


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

    def ping(self) -> None: ...
