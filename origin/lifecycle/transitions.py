"""Transitions for a store without a lifecycle engine of its own (the local one).

The same decisions as the bucket rules S3 applies (origin/lifecycle/rules.py):
an object moves to the coldest tier whose rule selects it and is due by its
age (the time since it was written; a move keeps it). Moves only go colder, so
a rerun after a kill finds what is left to move and moves it; nothing moves twice.
"""
from __future__ import annotations

from origin.ports.store import KeyMissing, StoredObject
from origin.tiers import colder


def mover(store, rules, now: float, report, metrics=None, on_change=None):
    """A `walk` visitor: moves an object that is due, returns the tier it ends in."""
    def visit(obj: StoredObject) -> str:
        target = rules.target(obj.key, obj.size, now - obj.modified)
        if not colder(target, obj.tier):
            return obj.tier
        try:
            store.set_tier(obj.key, target)
        except KeyMissing:  # deleted while the walk ran
            return obj.tier
        report.transitioned += 1
        if metrics is not None:
            metrics.transitions.labels(target).inc()
        if on_change is not None:
            on_change()
        return target

    return visit
