"""Inventory: one walk of the store, counted by object class and tier.

A walk lists every object (`Store.objects`): on S3 one LIST request per 1,000
objects ($0.005 per 1,000 requests at AWS list prices: 15 million objects cost
about $0.08 a walk). It counts, for every (class, tier), the objects, their
bytes and how many are under 128 KiB (cold tiers bill those as 128 KiB), and the
lazy-variant bytes of every content (what eviction's budget counts).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from origin import keys
from origin.ports.store import StoredObject
from origin.tiers import TIERS

TOPS = (keys.IMAGES, keys.SOURCES, keys.RECORDS, "uploads", "quarantine")
SMALL = 128 * 1024  # Standard-IA and Glacier IR bill every object as at least this


@dataclass
class Tally:
    objects: int = 0
    bytes: int = 0
    small_objects: int = 0  # under SMALL bytes
    small_bytes: int = 0

    def add(self, size: int) -> None:
        self.objects += 1
        self.bytes += size
        if size < SMALL:
            self.small_objects += 1
            self.small_bytes += size

    def billable(self, min_bytes: int, overhead: int = 0) -> int:
        """Bytes as billed: each object at least `min_bytes` (0 or SMALL), plus a per-object overhead."""
        raised = self.small_objects * SMALL - self.small_bytes if min_bytes else 0
        return self.bytes + raised + self.objects * overhead


@dataclass
class Inventory:
    tallies: dict = field(default_factory=dict)  # (class, tier) → Tally
    variants: dict = field(default_factory=dict)  # content id → [lazy variant bytes, newest write time]
    contents: set = field(default_factory=set)  # content folders seen under images/

    def add(self, obj: StoredObject, tier: str | None = None) -> None:
        cls = keys.object_class(obj.key)
        self.tallies.setdefault((cls, tier or obj.tier), Tally()).add(obj.size)
        top, _, rest = obj.key.partition("/")
        if top == keys.IMAGES:
            content = rest.partition("/")[0]
            self.contents.add(content)
            if cls in keys.REGENERABLE:
                entry = self.variants.setdefault(content, [0, 0.0])
                entry[0] += obj.size
                entry[1] = max(entry[1], obj.modified)

    def remove(self, obj: StoredObject) -> None:
        """An object the walk counted was deleted since (eviction)."""
        tally = self.tallies.get((keys.object_class(obj.key), obj.tier))
        if tally is not None:
            tally.objects -= 1
            tally.bytes -= obj.size
            if obj.size < SMALL:
                tally.small_objects -= 1
                tally.small_bytes -= obj.size

    def total(self, cls: str | None = None, tier: str | None = None) -> Tally:
        out = Tally()
        for (c, t), tally in self.tallies.items():
            if (cls is None or c == cls) and (tier is None or t == tier):
                out.objects += tally.objects
                out.bytes += tally.bytes
                out.small_objects += tally.small_objects
                out.small_bytes += tally.small_bytes
        return out

    @property
    def variant_bytes(self) -> int:
        return sum(size for size, _ in self.variants.values())

    def as_rows(self) -> list[dict]:
        return [{"class": c, "tier": t, "objects": v.objects, "bytes": v.bytes}
                for (c, t), v in sorted(self.tallies.items())]


def walk(store, visit: Callable[[StoredObject], str] | None = None, tops=TOPS) -> Inventory:
    """Every object once; `visit(obj)` may move it and returns the tier it is in afterwards."""
    inventory = Inventory()
    for top in tops:
        for obj in store.objects(top):
            inventory.add(obj, visit(obj) if visit is not None else obj.tier)
    return inventory


def publish(inventory: Inventory, metrics) -> None:
    """Bytes and objects by class and tier, as gauges (the last walk's figures)."""
    if metrics is None:
        return
    for cls in keys.OBJECT_CLASSES:
        for tier in TIERS:  # every pair, so a tier emptied since the last walk reads 0
            tally = inventory.tallies.get((cls, tier), Tally())
            metrics.store_bytes.labels(cls, tier).set(tally.bytes)
            metrics.store_objects.labels(cls, tier).set(tally.objects)
