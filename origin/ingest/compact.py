"""Compaction: collapse duplicates found late and reclaim storage, never breaking a URL.

`imagehost compact` runs these steps in order; the worker runs the same merge
steps for the near-duplicates it finds inline (origin/ingest/dedup.py).

    plan      look for perceptual duplicates among contents not yet checked (and
              their neighbours); write one merge intent per content that collapses
              (catalog `merges`: from → into), before anything moves
    preserve  copy the collapsing content's source to sources/{content}/ (its
              uploaders' owner-only download; never served)
    repoint   one catalog transaction per intent: every record of `from` now points
              at `into` (and at the kept source), the reference counts move with
              them, `from` turns `deleting` (no alias can attach to it any more)
    grace     wait until IMAGEHOST_RECORD_CACHE_SECONDS (+ a margin for renders
              already running) have passed since the repoint: until then a
              gunicorn worker may still serve a repointed record from its cache,
              reading the old content's keys, which therefore still exist
    delete    delete the old content's objects, then its index entry, then its row
    sweep     reclaim every other content that is `deleting` (a delete that died
              half-way) or unreferenced, store folders under images/ with neither a
              content row nor a record, and kept sources no record uses
    intermediates  make the render intermediate of every content stored before they
              existed (origin/ingest/backfill.py)

Crash safety: every step is idempotent and starts from what the catalog says.
An intent is written before the first object moves; a record moves only in the
repoint transaction, and only onto a live content whose objects exist; objects
go only after the grace, and the row only after the objects. So a process killed
at any point leaves every URL serving (from the old content until the repoint,
from the new one after it) and a rerun finishes the open intents first.

Guard: a run holds the catalog's maintenance lock (Catalog.maintenance_lock), the
same one `imagehost lifecycle` holds, so compaction, transitions and eviction
never race; the lock dies with its holder, so a killed run never blocks the next.
"""
from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass, field

from origin import keys
from origin.errors import Unavailable
from origin.pipeline import fallback
from origin.pipeline.records import served
from origin.pipeline.variants import source_format
from origin.ingest import backfill
from origin.ingest.dedup import Policy, count_duplicate, count_saved, neighbours, rank
from origin.ports.catalog import ContentMissing, Merge
from origin.ports.store import KeyMissing

log = logging.getLogger("imagehost.compact")
STEPS = ("plan", "preserve", "repoint", "grace", "delete", "sweep", "intermediates")
PLAN_ROUNDS = 4  # a chain a → b → c resolves over rounds: only contents that stay canonical are targets
ORPHAN_MIN_AGE_SECONDS = 60.0  # a store folder this fresh may still be being written
BATCH = 500


@dataclass(frozen=True)
class Compactor:
    store: object
    catalog: object
    index: object
    policy: Policy
    metrics: object = None
    stop_after: str = ""  # test hook: SIGKILL this process after that step
    orphan_min_age: float = ORPHAN_MIN_AGE_SECONDS
    intermediate_sizes: tuple = ()  # IMAGEHOST_INTERMEDIATE_SIZES: none makes none


@dataclass
class Report:
    planned: int = 0
    repointed: int = 0
    cancelled: int = 0
    deleted: int = 0
    reclaimed: int = 0
    orphans: int = 0
    intermediates: int = 0
    steps: list = field(default_factory=list)


# --------------------------------------------------------------------- merge steps


def _cancel(ctx: Compactor, merge: Merge) -> bool:
    ctx.catalog.set_merge_step(merge.id, "cancelled")
    ctx.catalog.set_checked([merge.from_id], False)  # a later compaction decides again
    return False


def preserve(ctx: Compactor, merge: Merge) -> bool:
    """Copy the collapsing content's source beside the images/ tree; False: the intent is cancelled."""
    try:
        content = ctx.catalog.get_content(merge.from_id)
        target = ctx.catalog.get_content(merge.into_id)
    except ContentMissing:
        return _cancel(ctx, merge)
    if not content.live or not target.live:
        return _cancel(ctx, merge)
    fmt = source_format(content)
    try:
        data = ctx.store.get(keys.source_key(content.id, fmt))
    except KeyMissing:
        log.warning("merge %s: content %s has no source; not collapsed", merge.id, content.id)
        return _cancel(ctx, merge)
    ctx.store.put(keys.kept_source_key(content.id, fmt), data, content.content_type)
    ctx.catalog.set_merge_step(merge.id, "preserved")
    return True


def repoint(ctx: Compactor, merge: Merge) -> bool:
    """Move every record of `from` onto `into` in one transaction; False: cancelled."""
    try:
        content = ctx.catalog.get_content(merge.from_id)
    except ContentMissing:
        return _cancel(ctx, merge)
    kept = keys.kept_source_key(content.id, source_format(content))
    protected = ctx.policy.optout if merge.kind == "perceptual" else frozenset()
    if ctx.catalog.repoint(merge, kept, protected):
        ctx.index.remove(merge.from_id)
        count_duplicate(ctx.metrics, merge.kind)
        log.info("content %s collapsed into %s (%s)", merge.from_id, merge.into_id, merge.kind)
        return True
    # a copy preserved for nobody is left to the sweep (which spares open intents and fresh folders):
    # deleting it here could race a new intent for the same content that preserved it again
    ctx.catalog.set_checked([merge.from_id], False)
    return False


def due_in(ctx: Compactor, merge: Merge) -> float:
    """Seconds until a repointed merge's old content may be deleted (≤ 0: now)."""
    return merge.repointed_at + ctx.policy.grace_seconds - ctx.catalog.db_now()


def delete(ctx: Compactor, merge: Merge) -> bool:
    """Delete the old content once the grace is over; False: not yet."""
    try:
        content = ctx.catalog.get_content(merge.from_id)
    except ContentMissing:  # reclaimed already (a sweep, or an earlier run)
        ctx.catalog.set_merge_step(merge.id, "done")
        return True
    if content.live or content.repointed_at + ctx.policy.grace_seconds > ctx.catalog.db_now():
        return False
    into = ctx.catalog.get_content(merge.into_id)
    for record in ctx.catalog.records_of(into.id):  # their fallbacks still name the old keys
        if record.servable:
            fallback.write(ctx.store, served(record, into))
    saved = reclaim(ctx.store, ctx.catalog, content, ctx.index, measure=True) - content.bytes  # its source is kept
    ctx.catalog.set_merge_step(merge.id, "done")
    count_saved(ctx.metrics, saved)
    return True


def advance(ctx: Compactor, merge: Merge) -> Merge | None:
    """Run a merge's next steps up to and including the repoint; None when it was cancelled."""
    if merge.step == "planned" and not preserve(ctx, merge):
        return None
    if merge.step in ("planned", "preserved") and not repoint(ctx, merge):
        return None
    return ctx.catalog.get_merge(merge.id)


# --------------------------------------------------------------------- reclaiming


def reclaim(store, catalog, content, index=None, measure: bool = False) -> int:
    """Delete a `deleting` content: its objects, its index entry, then its row. Returns the bytes
    it held when `measure` (and the store can say), else 0."""
    prefix = keys.prefix(content.id)
    held = folder_bytes(store, prefix) if measure else 0
    store.delete_prefix(prefix)
    if index is not None:
        index.remove(content.id)
    catalog.drop_content(content.id)
    return held


# ------------------------------------------------------------------ store walking


def folder_bytes(store, prefix: str) -> int:
    try:
        return sum(obj.size for obj in store.objects(prefix))
    except Unavailable:  # a measurement only
        return 0


def folder_age(store, prefix: str) -> float:
    """Seconds since the newest object under `prefix` was written (infinite when empty)."""
    newest = max((obj.modified for obj in store.objects(prefix)), default=None)
    return float("inf") if newest is None else time.time() - newest


# ------------------------------------------------------------------------ planning


def plan(ctx: Compactor) -> tuple[int, list[str]]:
    """Write intents for perceptual duplicates among unchecked contents; returns how many, and the
    unchecked contents whose decision is final (to mark checked once their merges ran)."""
    if not ctx.policy.perceptual:
        return 0, []
    # a content collapsing already is neither source nor target; nor is a target still waiting for its repoint
    open_merges = ctx.catalog.open_merges()
    busy = {m.from_id for m in open_merges} | {m.into_id for m in open_merges if m.step != "repointed"}
    hoods: dict = {}

    def hood(content):
        if content.id not in hoods:
            hoods[content.id] = neighbours(ctx.catalog, ctx.index, content, ctx.policy)
        return hoods[content.id]

    def best(content):
        return max((content, *hood(content).contents), key=rank)

    owners_ok = _owners_check(ctx)
    planned, final, after = 0, [], ""
    while batch := ctx.catalog.unchecked(BATCH, after):
        after = batch[-1].id
        for content in batch:
            if content.id in busy:
                continue
            if not owners_ok(content.id):
                final.append(content.id)  # never collapsed: nothing to look for
                continue
            target = best(content)
            if target.id != content.id:
                if best(target).id == target.id and target.id not in busy:
                    if ctx.catalog.plan_merge(content.id, target.id, "perceptual"):
                        planned += 1
                        busy.add(content.id)
                    final.append(content.id)
                continue  # else: its target collapses too; decided in a later round
            for other in hood(content).contents:
                if other.id not in busy and best(other).id == content.id:
                    if ctx.catalog.plan_merge(other.id, content.id, "perceptual"):
                        planned += 1
                        busy.add(other.id)
            if hood(content).settled:
                final.append(content.id)
    return planned, final


def _owners_check(ctx: Compactor):
    if not ctx.policy.optout:
        return lambda content_id: True
    return lambda content_id: ctx.policy.allows(ctx.catalog.content_owners([content_id]).get(content_id, ()))


# ------------------------------------------------------------------------- the run


def _step_done(ctx: Compactor, report: Report, step: str) -> None:
    report.steps.append(step)
    if ctx.stop_after == step:
        log.warning("compact: stopping after %s (IMAGEHOST_COMPACT_STOP_AFTER)", step)
        os.kill(os.getpid(), signal.SIGKILL)


def execute(ctx: Compactor, report: Report, first: bool) -> None:
    for merge in ctx.catalog.open_merges():
        if merge.step == "planned" and not preserve(ctx, merge):
            report.cancelled += 1
    if first:
        _step_done(ctx, report, "preserve")
    for merge in ctx.catalog.open_merges():
        if merge.step in ("planned", "preserved"):
            if repoint(ctx, merge):
                report.repointed += 1
            else:
                report.cancelled += 1
    if first:
        _step_done(ctx, report, "repoint")


def compact(ctx: Compactor) -> Report:
    """The whole run, under the maintenance guard it shares with `imagehost lifecycle` (MaintenanceBusy
    at once when another holds it)."""
    with ctx.catalog.maintenance_lock():
        return _compact(ctx)


def _compact(ctx: Compactor) -> Report:
    report = Report()
    checked: list[str] = []
    for round_ in range(PLAN_ROUNDS):
        planned, final = plan(ctx)
        report.planned += planned
        checked += final
        if round_ == 0:
            _step_done(ctx, report, "plan")
        execute(ctx, report, first=round_ == 0)  # open intents from an earlier run go first, too
        if not planned:
            break
    ctx.catalog.set_checked(checked)
    waiting = [m for m in ctx.catalog.open_merges() if m.step == "repointed"]
    longest = max((due_in(ctx, m) for m in waiting), default=0.0)
    if longest > 0:
        log.info("compact: waiting %.1f s for record caches to expire", longest)
        time.sleep(longest + 0.05)
    _step_done(ctx, report, "grace")
    for merge in waiting:
        if delete(ctx, merge):
            report.deleted += 1
    _step_done(ctx, report, "delete")
    sweep(ctx, report)
    _step_done(ctx, report, "sweep")
    report.intermediates = backfill.intermediates(ctx.store, ctx.catalog, ctx.intermediate_sizes)
    _step_done(ctx, report, "intermediates")
    return report


def sweep(ctx: Compactor, report: Report) -> None:
    while batch := ctx.catalog.reclaimable(ctx.policy.grace_seconds, BATCH):
        for content in batch:
            reclaim(ctx.store, ctx.catalog, content, ctx.index)
            report.reclaimed += 1
        if len(batch) < BATCH:
            break
    open_from = {m.from_id for m in ctx.catalog.open_merges()}
    for top, in_use in ((keys.IMAGES, ctx.catalog.content_in_use), (keys.SOURCES, None)):
        names = list(ctx.store.folders(top))
        for start in range(0, len(names), BATCH):
            part = names[start: start + BATCH]
            if in_use is not None:
                used = in_use(part)
            else:  # a kept source is in use while a record names it, or an open merge is about to
                wanted = {}
                for name in part:
                    for key in (obj.key for obj in ctx.store.objects(keys.kept_prefix(name))):
                        wanted.setdefault(name, []).append(key)
                found = ctx.catalog.sources_in_use([k for ks in wanted.values() for k in ks])
                used = {name for name, ks in wanted.items() if set(ks) & found} | open_from
            for name in part:
                prefix = f"{top}/{name}/"
                if name not in used and folder_age(ctx.store, prefix) >= ctx.orphan_min_age:
                    ctx.store.delete_prefix(prefix)
                    report.orphans += 1
                    log.info("compact: removed orphaned %s", prefix)
