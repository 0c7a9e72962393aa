"""A store that counts its requests by operation and object class, and notes usage.

Delivery reads and writes through it (origin/pipeline/variants.py): every GET and
PUT is counted (imagehost_store_requests_total{op, class}, what `imagehost cost`
prices), and reads and lazy-variant writes under images/ are noted for eviction
(origin/lifecycle/usage.py). Nothing here touches the catalog.
"""
from __future__ import annotations

from origin import keys
from origin.ports.store import Store


def _content(key: str) -> str:
    """The content id of a key under images/{content}/, else ""."""
    top, _, rest = key.partition("/")
    return rest.partition("/")[0] if top == keys.IMAGES else ""


class MeteredStore:
    def __init__(self, store: Store, metrics=None, usage=None):
        self.inner = store
        self.metrics = metrics
        self.usage = usage

    def _count(self, op: str, key: str) -> None:
        if self.metrics is not None:
            self.metrics.store_requests.labels(op, keys.object_class(key)).inc()

    def get(self, key: str) -> bytes:
        self._count("get", key)
        data = self.inner.get(key)
        if self.usage is not None and (content := _content(key)):
            self.usage.seen(content)
        return data

    def put(self, key: str, data: bytes, content_type: str = "") -> None:
        self._count("put", key)
        self.inner.put(key, data, content_type)
        if self.usage is not None and (content := _content(key)) and keys.object_class(key) in keys.REGENERABLE:
            self.usage.stored(content, key.rpartition("/")[2], len(data))

    def exists(self, key: str) -> bool:
        self._count("head", key)
        return self.inner.exists(key)

    def delete(self, key: str) -> None:
        self._count("delete", key)
        self.inner.delete(key)

    def __getattr__(self, name):  # listing, tiers, presigning, ping: as the store does them
        return getattr(self.inner, name)


def metered(store: Store, metrics=None, usage=None) -> MeteredStore:
    """`store` metered (an already metered store keeps its inner store, with these metrics and usage)."""
    inner = store.inner if isinstance(store, MeteredStore) else store
    return MeteredStore(inner, metrics, usage)
