"""The worker: takes an image from `uploaded` to a resting state, one named step at a time.

    uploaded → validating → moderating → processing → ready
                   └→ quarantined        └→ held (until a reviewer acts)

Every step reads the image's current state first and is safe to run twice: a
worker killed at any point leaves the job to the next one (the queue redelivers
after the lease / visibility timeout), and nothing accepted is lost. The bytes
move `uploads/{id}` → `images/{id}/source.{ext}` (or `quarantine/{id}/…`) by
copy-then-delete, so there is always one complete copy.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass

from origin import keys
from origin.errors import NotFound, Unavailable, UnsupportedImage
from origin.formats import FORMATS
from origin.ingest import originals, process
from origin.ingest.sniff import sniff
from origin.ingest.validate import Limits, Rejected, validate
from origin.pipeline.render import Encoding
from origin.pipeline.variants import render_source_key
from origin.ports.catalog import RecordMissing
from origin.ports.moderation import ModerationFailed
from origin.ports.queue import Job
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

    @property
    def limits(self) -> Limits:
        return Limits.from_settings(self.settings)


def upload_key(image_id: str) -> str:
    return f"uploads/{image_id}"


def quarantine_key(image_id: str) -> str:
    return f"quarantine/{image_id}/upload"


def run_job(pipe: Pipeline, image_id: str) -> str:
    """Advance one image as far as it goes; returns the state it rests in."""
    for _ in range(8):  # at most one pass per step
        try:
            record = pipe.catalog.get(image_id)
        except RecordMissing:
            return "deleted"
        step = STEPS.get(record.state)
        if step is None:
            return record.state
        step(pipe, record)
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
        checked = validate(data, pipe.limits, declared_type=record.content_type or None, filename=record.filename,
                           decode=not _gets_master(data))
        verdict = pipe.scanner.scan(data)
        if not verdict.clean:
            raise Rejected("malware", f"the malware scan found {verdict.signature}")
        try:
            decoded = originals.prepare(data, checked.fmt)
        except UnsupportedImage as exc:
            raise Rejected("corrupt", exc.message) from None
    except Rejected as exc:
        quarantine(pipe, record, data, exc.reason, exc.message)
        return
    fmt = checked.fmt
    header = decoded.header
    pipe.store.put(keys.source_key(record.id, fmt), data, FORMATS[fmt].mime)
    if decoded.master is not None:
        pipe.store.put(keys.master_key(record.id, header.has_alpha), decoded.master, "")
    note = {"declared_type_mismatch": checked.mismatch} if checked.mismatch else {}
    pipe.catalog.transition(
        record.id, ("validating",), "moderating",
        content_type=FORMATS[fmt].mime, width=header.width, height=header.height, bytes=len(data),
        has_alpha=header.has_alpha, pages=header.pages, metadata=json.dumps(note),
    )
    pipe.store.delete(upload_key(record.id))


def _gets_master(data: bytes) -> bool:
    """HEIC is decoded once, into its master, which is its decode check too."""
    try:
        return sniff(data[:64]) in originals.NEEDS_MASTER
    except UnsupportedImage:
        return False


def quarantine(pipe: Pipeline, record, data: bytes, reason: str, message: str) -> None:
    pipe.store.put(quarantine_key(record.id), data, "application/octet-stream")
    moved = pipe.catalog.transition(record.id, ("validating",), "quarantined", reason=reason, detail=message)
    pipe.store.delete(upload_key(record.id))
    if moved:
        log.info("image %s quarantined: %s", record.id, reason)
        notify(pipe, record, "image.quarantined", {"reason": reason, "message": message})


def step_moderating(pipe: Pipeline, record) -> None:
    source = pipe.store.get(render_source_key(record))
    try:
        verdict = pipe.moderator.score(source)
    except ModerationFailed as exc:
        # never public without a verdict: a person decides
        pipe.catalog.transition(record.id, ("moderating",), "held", reason="moderation_failed", detail=exc.message)
        return
    threshold = pipe.settings.nsfw_threshold
    if verdict.score > threshold:
        if pipe.catalog.transition(record.id, ("moderating",), "held", nsfw_score=verdict.score, reason="nsfw_score",
                                   detail=f"moderation score {verdict.score:.2f} is over {threshold:.2f}"):
            notify(pipe, record, "image.held", {"score": round(verdict.score, 4)})
        return
    pipe.catalog.transition(record.id, ("moderating",), "processing", nsfw_score=verdict.score)


def step_processing(pipe: Pipeline, record) -> None:
    fmt = _fmt(record)
    data = pipe.store.get(keys.source_key(record.id, fmt))
    source = data if fmt not in originals.NEEDS_MASTER else pipe.store.get(render_source_key(record))
    settings = pipe.settings
    info = {**json.loads(record.metadata or "{}"), **process.metadata(data, fmt, record.width, record.height, source)}
    base = process.upright_base(source, record.width, record.height, max(settings.thumb_sizes))
    hashes = process.hashes(data, base)
    thumbs = process.thumbnails(base, source, record.id, record.width, record.height, record.pages,
                                settings.thumb_sizes, Encoding.from_settings(settings))
    for key, (blob, mime) in thumbs.items():
        pipe.store.put(key, blob, mime)
    if pipe.catalog.transition(record.id, ("processing",), "ready", sha256=hashes.sha256, phash=hashes.phash,
                               metadata=json.dumps(info), reason="", detail=""):
        notify(pipe, record, "image.ready", {})


STEPS = {
    "requested": step_requested,
    "uploaded": step_uploaded,
    "validating": step_validating,
    "moderating": step_moderating,
    "processing": step_processing,
}


def _fmt(record) -> str:
    return FORMATS_BY_MIME.get(record.content_type, "jpeg")


FORMATS_BY_MIME = {f.mime: f.name for f in FORMATS.values()}


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
