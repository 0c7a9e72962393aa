"""Eviction: lazy variants kept within IMAGEHOST_VARIANT_BUDGET, least recently used first.

Only the regenerable class is ever deleted (keys.REGENERABLE: lazily rendered
variants, the public original among them); sources, masters, the render
intermediate, eager thumbnails and kept sources never are. An evicted variant is
simply rendered again on its next miss (its URL never breaks); that render is
counted as a re-render caused by eviction (origin/lifecycle/usage.py).

When the catalog's count of variant bytes is over the budget, contents are taken
coldest first (by the last access any origin noted), and all their lazy variants
go, until the count is under 90 % of the budget (room for the next renders).
Contents read in the last `min_idle` seconds are left alone, so a variant read or
rendered since the last flush of the notes is never taken.

Per content: its variants' names are written first (intent), then the objects
are deleted, then its count is set to 0. A run killed in between leaves a count
that is too high; the next run lists the folder again, deletes what is left and
finishes. Deleting an absent object is no error, so nothing is done twice wrong.
"""
from __future__ import annotations

from dataclasses import dataclass

from origin import keys

LOW_WATER = 0.9
BATCH = 200


@dataclass(frozen=True)
class Evictor:
    store: object
    catalog: object
    budget: int  # bytes; 0: no bound
    metrics: object = None
    min_idle: float = 3600.0


def evict_content(ev: Evictor, content_id: str, now: float, on_delete=None) -> list:
    """Delete one content's lazy variants; returns the StoredObjects deleted."""
    variants = [obj for obj in ev.store.objects(keys.prefix(content_id))
                if keys.object_class(obj.key) in keys.REGENERABLE]
    victims = [obj for obj in variants if obj.modified <= now - ev.min_idle]  # not one just rendered
    if victims:
        ev.catalog.mark_evicting(content_id, [obj.key.rpartition("/")[2] for obj in victims], now)
    for obj in victims:
        ev.store.delete(obj.key)
        if ev.metrics is not None:
            ev.metrics.evictions.inc()
            ev.metrics.evicted_bytes.inc(obj.size)
        if on_delete is not None:
            on_delete()
    ev.catalog.mark_evicted(content_id, sum(obj.size for obj in variants if obj not in victims))
    return victims


def evict(ev: Evictor, now: float, report, on_delete=None) -> list:
    """Bring the variant bytes under the budget; returns every object deleted."""
    total = ev.catalog.usage_total()
    report.variant_bytes = report.variant_bytes_after = total
    report.budget = ev.budget
    deleted: list = []
    if ev.budget <= 0 or total <= ev.budget:
        return deleted
    target = int(ev.budget * LOW_WATER)
    after = (-1.0, "")
    while total > target:
        batch = ev.catalog.coldest(BATCH, before=now - ev.min_idle, after=after)
        if not batch:
            report.over_budget = True  # what is left was all read recently: the budget is too small
            break
        for usage in batch:
            after = (usage.last_access, usage.content_id)
            gone = evict_content(ev, usage.content_id, now, on_delete)
            deleted += gone
            report.evicted_contents += 1
            report.evicted_variants += len(gone)
            report.evicted_bytes += sum(obj.size for obj in gone)
            total -= usage.variant_bytes
            if total <= target:
                break
    report.variant_bytes_after = max(total, 0)
    return deleted
