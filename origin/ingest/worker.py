"""The worker: takes an image from `uploaded` to a resting state, one named step at a time.

    uploaded → validating → moderating → processing → ready
                   └→ quarantined        └→ held (until a reviewer acts)

Every step reads the image's current state first and is safe to run twice: a
worker killed at any point leaves the job to the next one (the queue redelivers
after the lease / visibility timeout), and nothing accepted is lost. The bytes
move `uploads/{id}` → `images/{content}/source.{ext}` (or `quarantine/{id}/…`) by
copy-then-delete, so there is always one complete copy.

Dedup (origin/ingest/dedup.py): validation attaches the record to a content in
the catalog *before* anything is stored under it: a new content (its id is the
record's) or, for bytes already stored, the existing one (an exact alias: nothing
is stored again). Moderation reuses a content's score. Processing computes the
pHash once per content and collapses near-duplicates (dedup.decide) with the
same merge steps as `imagehost compact`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass, replace

from origin import keys
from origin.keys import quarantine_key, upload_key
from origin.errors import NotFound, Unavailable, UnsupportedImage
from origin.formats import FORMATS
from origin.ingest import compact, dedup, joblog, originals, process, qualities
from origin.ingest.validate import Limits, Rejected, validate
from origin.pipeline import sources
from origin.pipeline.render import Encoding
from origin.pipeline import fallback, placeholders
from origin.pipeline.records import served, served_record
from origin.pipeline.variants import owner_source_key, render_source_key, source_format
from origin.ports.catalog import Content, ContentMissing, RecordMissing
from origin.ports.moderation import ModerationFailed
from origin.ports.queue import Job
from origin.ports.store import KeyMissing
from origin.security import webhooks

log = logging.getLogger("imagehost.worker")
RESTING = ("ready", "quarantined", "held")


class RetryLater(Exception):
    """A dependency is down (clamd, store, catalog): the job waits and comes back."""


@dataclass(frozen=True)
class Pipeline:
    settings: object
    store: object
    catalog: object
    queue: object
    scanner: object
    moderator: object
    metrics: object = None
    index: object = None  # the perceptual-hash index (origin/ports/hash_index.py)

    @property
    def limits(self) -> Limits:
        return Limits.from_settings(self.settings)

    def compactor(self) -> compact.Compactor:
        return compact.Compactor(self.store, self.catalog, self.index, dedup.Policy.from_settings(self.settings),
                                 self.metrics)


def run_job(pipe: Pipeline, image_id: str) -> str:
    """Advance one image as far as it goes; returns the state it rests in. Each step is logged
    and counted (origin/ingest/joblog.py) once the state it led to is read."""
    last = None  # (record the step ran on, when it started)
    for _ in range(8):  # at most one pass per step
        try:
            record = pipe.catalog.get(image_id)
        except RecordMissing:
            if last:
                joblog.done(pipe.metrics, *last, "deleted")
            return "deleted"
        if last:
            joblog.done(pipe.metrics, *last, record.state, record)
        step = STEPS.get(record.state)
        if step is None:
            return record.state
        last = (record, joblog.started())
        try:
            step(pipe, record)
        except Exception as exc:
            joblog.failed(pipe.metrics, *last, exc, retry=isinstance(exc, (RetryLater, Unavailable)))
            raise
    return pipe.catalog.get(image_id).state


def step_requested(pipe: Pipeline, record) -> None:
    # an S3 event arrives for an image still `requested`: the bytes are there now
    if not pipe.store.exists(upload_key(record.id)):
        raise RetryLater("upload event before the object is visible")
    pipe.catalog.transition(record.id, ("requested",), "uploaded")


def step_uploaded(pipe: Pipeline, record) -> None:
    pipe.catalog.transition(record.id, ("uploaded",), "validating")


def step_validating(pipe: Pipeline, record) -> None:
    try:
        data = pipe.store.get(upload_key(record.id))
    except NotFound:
        # the uploader's write may still be landing; after a few tries it never will
        if record.attempts < 5:
            raise RetryLater("the upload is not in the store yet") from None
        pipe.catalog.transition(record.id, ("validating",), "quarantined", reason="upload_missing",
                                detail="the uploaded bytes never reached the store")
        return
    try:
        checked, decoded = check(pipe, data, record.content_type or None, record.filename)
    except Rejected as exc:
        quarantine(pipe, record, data, exc.reason, exc.message)
        return
    if keep(pipe, record, data, checked, decoded):
        pipe.store.delete(upload_key(record.id))


def check(pipe: Pipeline, data: bytes, declared_type: str | None, filename: str):
    """Validation, the malware scan and the one decode (the master, the intermediates): (checked, decoded),
    or Rejected."""
    sizes = pipe.settings.intermediate_sizes
    checked = validate(data, pipe.limits, declared_type=declared_type, filename=filename,
                       decode=not originals.gets_master(data), decode_box=originals.decode_box(sizes))
    verdict = pipe.scanner.scan(data)
    if not verdict.clean:
        raise Rejected("malware", f"the malware scan found {verdict.signature}")
    try:
        decoded = originals.prepare(data, checked.fmt, sizes, checked.decoded)
    except UnsupportedImage as exc:
        raise Rejected("corrupt", exc.message) from None
    return checked, decoded


def keep(pipe: Pipeline, record, data: bytes, checked, decoded) -> bool:
    """Attach validated bytes to a content, store what is new, move on to `moderating`.
    False when the record is gone or another worker moved it on meanwhile."""
    fmt = checked.fmt
    header = decoded.header
    sha256 = hashlib.sha256(data).hexdigest()
    content = Content(id=record.id, sha256=sha256, content_type=FORMATS[fmt].mime, width=header.width,
                      height=header.height, has_alpha=header.has_alpha, pages=header.pages, bytes=len(data))
    attached = pipe.catalog.attach(record.id, content, ("validating",))  # before anything is stored under it
    if attached is None:
        return False  # deleted meanwhile, or another worker moved it on
    content_id = attached.content.id
    source_key = keys.source_key(content_id, fmt)
    # an alias stores nothing, unless the content's first upload died before storing its bytes (equal bytes)
    if not attached.alias or not pipe.store.exists(source_key):
        pipe.store.put(source_key, data, FORMATS[fmt].mime)
    originals.store_decoded(pipe.store, content_id, decoded, attached.alias)
    note = {"declared_type_mismatch": checked.mismatch} if checked.mismatch else {}
    moved = pipe.catalog.transition(
        record.id, ("validating",), "moderating",
        content_type=FORMATS[fmt].mime, width=header.width, height=header.height, bytes=len(data),
        has_alpha=header.has_alpha, pages=header.pages, sha256=sha256,
        metadata=json.dumps({**json.loads(record.metadata or "{}"), **note}),  # keeps the request id
    )
    if moved and attached.alias:
        log.info("image %s is an exact duplicate of content %s", record.id, content_id)
        dedup.count_duplicate(pipe.metrics, "exact", len(data) + len(decoded.master or b""))
    return True


def quarantine(pipe: Pipeline, record, data: bytes, reason: str, message: str) -> None:
    pipe.store.put(quarantine_key(record.id), data, "application/octet-stream")
    moved = pipe.catalog.transition(record.id, ("validating",), "quarantined", reason=reason, detail=message)
    pipe.store.delete(upload_key(record.id))
    if moved:
        log.info("image %s quarantined: %s", record.id, reason)
        notify(pipe, record, "image.quarantined", {"reason": reason, "message": message})


def step_moderating(pipe: Pipeline, record) -> None:
    content = pipe.catalog.get_content(record.content_id) if record.content_id else None
    if content is not None and content.nsfw_score is not None:
        score = content.nsfw_score  # these bytes were scored already (an alias, or a retried job)
    else:
        source = smallest_source(pipe, served(record, content) if content is not None else record)
        try:
            verdict = pipe.moderator.score(source)
        except ModerationFailed as exc:
            # never public without a verdict: a person decides
            pipe.catalog.transition(record.id, ("moderating",), "held", reason="moderation_failed",
                                    detail=exc.message)
            return
        score = verdict.score
        if content is not None and verdict.model != "off":
            pipe.catalog.set_content_score(content.id, score)
    threshold = pipe.settings.nsfw_threshold
    if score > threshold:
        if pipe.catalog.transition(record.id, ("moderating",), "held", nsfw_score=score, reason="nsfw_score",
                                   detail=f"moderation score {score:.2f} is over {threshold:.2f}"):
            notify(pipe, record, "image.held", {"score": round(score, 4)})
        return
    pipe.catalog.transition(record.id, ("moderating",), "processing", nsfw_score=score)


def step_processing(pipe: Pipeline, record) -> None:
    content = pipe.catalog.get_content(record.content_id) if record.content_id else None
    view = served(record, content) if content is not None else record  # what its URLs render
    upload_at, render_at = owner_source_key(record), render_source_key(view)
    data = pipe.store.get(upload_at)
    source = data if render_at == upload_at else pipe.store.get(render_at)
    settings = pipe.settings
    info = {**json.loads(record.metadata or "{}"),
            **process.metadata(data, source_format(record), record.width, record.height, source)}
    phash = content.phash if content is not None else None
    if phash is None:  # the content's first processing: hashes, placeholder, dedup, thumbnails
        pixels = smallest_source(pipe, view) if view.pages == 1 else source
        base = process.upright_base(pixels, view.width, view.height, max(settings.thumb_sizes))
        phash = process.perceptual_hash(base)
        if content is not None:  # the placeholder, from the same base: its ≤ 100-px copy is a resize away
            pipe.catalog.set_content_thumbhash(content.id, placeholders.of_image(base))
        if content is None:  # a record validated before contents existed: its own keys, no dedup
            _store_thumbnails(pipe, view, base, source)
        else:
            process_content(pipe, record, replace(content, phash=phash), base, source)
    make_ready(pipe, record.id, lambda: pipe.catalog.transition(
        record.id, ("processing",), "ready", phash=phash, metadata=json.dumps(info), reason="", detail=""),
        lambda: notify(pipe, record, "image.ready", {}))  # sha256 was recorded at validation
    if content is not None and content.phash is None:  # the content's first processing
        choose_qualities(pipe, content.id, pixels)


def choose_qualities(pipe: Pipeline, content_id: str, pixels: bytes) -> None:
    """The content's encoder qualities (origin/ingest/qualities.py), once it is `ready`: the search
    costs more than the rest of processing together, so the upload does not wait for it. Its eager
    thumbnails, and a render asked for before the search ends, keep the fixed qualities; a content
    collapsed into another meanwhile needs none."""
    try:
        content = pipe.catalog.get_content(content_id)
    except ContentMissing:  # reclaimed meanwhile
        return
    if content.live and not content.qualities:
        qualities.choose_and_store(pipe.catalog, pipe.settings, content, pixels)


def make_ready(pipe: Pipeline, image_id: str, transition, then=lambda: None) -> None:
    """The record fallback (origin/pipeline/fallback.py) is written first, then the record turns
    ready; a transition that does not happen (deleted meanwhile) takes the fallback back."""
    fallback.write(pipe.store, served_record(pipe.catalog, pipe.catalog.get(image_id)))
    if transition():
        then()
        return
    try:
        if pipe.catalog.get(image_id).servable:  # another worker made it ready: the fallback is right
            return
    except RecordMissing:
        pass
    fallback.remove(pipe.store, image_id)


def smallest_source(pipe: Pipeline, view) -> bytes:
    """The pixels moderation and the thumbnails start from: the content's smallest intermediate (made
    from the validation decode; a fraction of the original's decode cost), or its render source."""
    pic = sources.Picture.of(view)
    for intermediate in sources.intermediates(pic, pipe.settings.intermediate_sizes):
        try:
            return pipe.store.get(intermediate.key)
        except KeyMissing:  # validated before intermediates existed: its first miss makes them
            break
    return pipe.store.get(sources.original(pic).key)


def _store_thumbnails(pipe: Pipeline, view, base, source: bytes) -> None:
    """At the fixed qualities: a content's qualities are chosen after it is ready (choose_qualities)."""
    settings = pipe.settings
    thumbs = process.thumbnails(base, source, view.content, view.width, view.height, view.pages,
                                settings.thumb_sizes, Encoding.from_settings(settings))
    for key, (blob, mime) in thumbs.items():
        pipe.store.put(key, blob, mime)


def process_content(pipe: Pipeline, record, content: Content, base, source: bytes) -> None:
    """A content's first processing (content.phash set, not yet stored): collapse it into a better
    near-duplicate, or store its thumbnails, mark it processed and collapse the worse ones into it."""
    policy = dedup.Policy.from_settings(pipe.settings)
    index = pipe.index
    index.add(content.id, content.phash)  # before looking: of two processed at once, one sees the other
    decision = None
    if policy.perceptual and policy.inline:
        owners = {record.owner}
        if policy.optout:
            owners |= pipe.catalog.content_owners([content.id]).get(content.id, set())
        if policy.allows(owners):
            decision = dedup.decide(content, dedup.neighbours(pipe.catalog, index, content, policy))
        else:
            pipe.catalog.set_checked([content.id])  # an opted-out owner's: never collapsed
    ctx = pipe.compactor()
    if decision is not None and decision.link_to is not None:
        merge = pipe.catalog.plan_merge(content.id, decision.link_to.id, "perceptual")
        if merge is not None and _run_merges(ctx, [merge]):
            log.info("image %s is a near-duplicate of content %s", record.id, decision.link_to.id)
            return  # its records (this one too) now serve the better content
        if not pipe.catalog.get_content(content.id).live:
            return  # another worker collapsed it meanwhile (two uploads of it processed at once)
        decision = None  # the target went away meanwhile: this content stands alone
    _store_thumbnails(pipe, served(record, content), base, source)
    pipe.catalog.mark_processed(content.id, content.phash)
    if decision is not None:
        merges = [pipe.catalog.plan_merge(other.id, content.id, "perceptual") for other in decision.absorb]
        _run_merges(ctx, [m for m in merges if m is not None])
        if decision.final:
            pipe.catalog.set_checked([content.id])


def _run_merges(ctx: compact.Compactor, merges) -> bool:
    """Preserve and repoint now; delete the old contents once the record caches have expired (a
    timer here; `imagehost compact` finishes what a dead process left). True if all repointed."""
    done = [m for m in (compact.advance(ctx, merge) for merge in merges) if m is not None]
    if done:
        timer = threading.Timer(ctx.policy.grace_seconds + 0.5, _finish_merges, args=(ctx, [m.id for m in done]))
        timer.daemon = True
        timer.start()
    return len(done) == len(merges)


def _finish_merges(ctx: compact.Compactor, merge_ids: list[int]) -> None:
    for merge_id in merge_ids:
        try:
            merge = ctx.catalog.get_merge(merge_id)
            if merge.step == "repointed":
                compact.delete(ctx, merge)
        except Exception:  # compaction finishes it later
            log.exception("merge %s: deleting the old content failed; `imagehost compact` will", merge_id)


STEPS = {
    "requested": step_requested,
    "uploaded": step_uploaded,
    "validating": step_validating,
    "moderating": step_moderating,
    "processing": step_processing,
}


def notify(pipe: Pipeline, record, event: str, extra: dict) -> None:
    if not record.callback_url:
        return
    payload = {"event": event, "id": record.id, "state": event.split(".", 1)[1],
               "status_url": f"{pipe.settings.base_url}/v1/images/{record.id}", **extra}
    secret = pipe.settings.webhook_secret
    threading.Thread(target=webhooks.send, args=(secret, record.callback_url, payload), daemon=True).start()


def handle(pipe: Pipeline, job: Job) -> None:
    try:
        state = run_job(pipe, job.image_id)
    except (RetryLater, Unavailable) as exc:
        log.warning("image %s waits: %s", job.image_id, exc)
        pipe.queue.retry_later(job, 5)
        return
    except Exception:
        log.exception("image %s: unexpected failure; it will be retried", job.image_id)
        pipe.queue.retry_later(job, 30)
        return
    log.info("image %s is %s", job.image_id, state)
    pipe.queue.ack(job)


def work(pipe: Pipeline, stop: threading.Event, wait_seconds: float = 1.0) -> None:
    """One worker loop: receive, handle, repeat until `stop` is set."""
    while not stop.is_set():
        try:
            jobs = pipe.queue.receive(wait_seconds)
        except Unavailable as exc:
            log.warning("queue unavailable: %s", exc)
            stop.wait(2)
            continue
        for job in jobs:
            handle(pipe, job)


def start_threads(pipe: Pipeline, count: int) -> threading.Event:
    stop = threading.Event()
    for n in range(count):
        threading.Thread(target=work, args=(pipe, stop), name=f"imagehost-worker-{n}", daemon=True).start()
    return stop
