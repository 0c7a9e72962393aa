"""`imagehost lifecycle`: transitions, usage reconciliation and eviction, under the maintenance guard.

    prune       forget usage rows of contents that are gone
    walk        list the store once (skipped with --no-walk): on the local store
                move every object that is due to its colder tier (transitions.py;
                on S3 the bucket's rules do that), make the catalog's variant byte
                counts exact, publish bytes by class and tier
    evict       bring lazy variants under IMAGEHOST_VARIANT_BUDGET (evict.py)

It holds the same guard as `imagehost compact` (Catalog.maintenance_lock), so the
two never run at once. Every step is idempotent: a run killed anywhere (tested
with SIGKILL: IMAGEHOST_LIFECYCLE_STOP_AFTER) leaves every URL serving, and the
next run finishes the job.
"""
from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass, field

from origin.lifecycle import evict as eviction
from origin.lifecycle.inventory import publish, walk
from origin.lifecycle.rules import Rules
from origin.lifecycle.transitions import mover

log = logging.getLogger("imagehost.lifecycle")


@dataclass(frozen=True)
class Lifecycle:
    store: object
    catalog: object
    rules: Rules
    budget: int = 0  # IMAGEHOST_VARIANT_BUDGET in bytes; 0: no bound
    metrics: object = None
    transitions: bool = True  # apply the rules here (a store without a lifecycle engine)
    min_idle: float = 3600.0
    stop_after: int = 0  # test hook: SIGKILL this process after that many moves and deletions

    @classmethod
    def from_settings(cls, settings, store, catalog, metrics=None) -> "Lifecycle":
        return cls(store, catalog, Rules.from_settings(settings), settings.variant_budget_bytes, metrics,
                   transitions=settings.store == "local", min_idle=max(3600.0, 2 * settings.access_flush_seconds),
                   stop_after=settings.lifecycle_stop_after)


@dataclass
class Report:
    pruned: int = 0
    walked: bool = False
    objects: int = 0
    bytes: int = 0
    transitioned: int = 0
    variant_bytes: int = 0  # lazy variants, by the catalog's count, before eviction
    budget: int = 0
    evicted_contents: int = 0
    evicted_variants: int = 0
    evicted_bytes: int = 0
    variant_bytes_after: int = 0
    over_budget: bool = False  # everything left was read too recently to evict
    steps: list = field(default_factory=list)


def run(ctx: Lifecycle, now: float | None = None, walk_store: bool = True) -> Report:
    now = time.time() if now is None else now
    report = Report()
    changes = [0]

    def changed() -> None:  # the crash tests' hook: die in the middle of a step
        changes[0] += 1
        if ctx.stop_after and changes[0] >= ctx.stop_after:
            log.warning("lifecycle: stopping after %d changes (IMAGEHOST_LIFECYCLE_STOP_AFTER)", changes[0])
            os.kill(os.getpid(), signal.SIGKILL)

    with ctx.catalog.maintenance_lock():
        report.pruned = ctx.catalog.prune_usage()
        report.steps.append("prune")
        inventory = None
        if walk_store:
            visit = mover(ctx.store, ctx.rules, now, report, ctx.metrics, changed) if ctx.transitions else None
            inventory = walk(ctx.store, visit)
            ctx.catalog.set_usage_bytes({cid: (inventory.variants.get(cid, (0, 0.0))[0],
                                               inventory.variants.get(cid, (0, now))[1])
                                         for cid in inventory.contents})
            total = inventory.total()
            report.walked, report.objects, report.bytes = True, total.objects, total.bytes
            report.steps.append("walk")
        evictor = eviction.Evictor(ctx.store, ctx.catalog, ctx.budget, ctx.metrics, ctx.min_idle)
        for obj in eviction.evict(evictor, now, report, changed):
            if inventory is not None:
                inventory.remove(obj)
        report.steps.append("evict")
        if inventory is not None:
            publish(inventory, ctx.metrics)
    return report
