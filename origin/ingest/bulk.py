"""Bulk import of existing originals (`imagehost ingest`): files, folders, s3://bucket/prefix.

Each file goes the way an upload goes, in this process: validation (magic bytes, header
limits, a decode), the malware scan and moderation when asked for (`--scan`, `--moderate`:
the pipeline's scanner and moderator; off, they are ScanOff and OffModerator), then the
worker's own steps (origin/ingest/worker.py): exact dedup, processing, metadata, hashes,
thumbnails, perceptual dedup. A refused file leaves nothing behind, and is reported with
its reason.

Resumable: before anything, the file's SHA-256 is looked up among the owner's records. One
already at rest is skipped ("already in"); one that an interrupted run left on the way is
finished. A record being imported holds a lease, so a running origin's workers leave it
alone (if the lease runs out they finish it: every step is idempotent).
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator

from origin.errors import ImagehostError, Unavailable
from origin.formats import FORMATS
from origin.ingest import originals, worker
from origin.ingest.validate import Rejected
from origin.ports.catalog import ImageRecord

RESTING = worker.RESTING
# what a file became: the first four are imported (stored or pointed at stored bytes)
IMPORTED, EXACT, NEAR, HELD, ALREADY, REFUSED, FAILED = (
    "imported", "exact_duplicate", "near_duplicate", "held", "already_in", "refused", "failed")


@dataclass(frozen=True)
class Item:
    """One file to import: a name to report and how to read it."""

    name: str
    size: int
    read: Callable[[], bytes]


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str
    id: str = ""
    reason: str = ""  # refused / failed: machine-readable
    message: str = ""


@dataclass
class Summary:
    files: int = 0
    seconds: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    refused: Counter = field(default_factory=Counter)  # by reason (failed ones too)

    def add(self, outcome: Outcome) -> None:
        self.files += 1
        self.statuses[outcome.status] += 1
        if outcome.status in (REFUSED, FAILED):
            self.refused[outcome.reason] += 1

    @property
    def ok(self) -> bool:
        return not self.refused

    def line(self) -> str:
        s = self.statuses
        rate = self.files / self.seconds if self.seconds else 0.0
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.refused.items()))
        return (f"{self.files} files in {self.seconds:.1f} s ({rate:.2f} files/s): "
                f"{s[IMPORTED]} imported, {s[EXACT]} exact duplicates, {s[NEAR]} near duplicates, "
                f"{s[HELD]} held for review, {s[ALREADY]} already in, "
                f"{s[REFUSED] + s[FAILED]} refused" + (f" ({reasons})" if reasons else ""))

    def as_dict(self) -> dict:
        return {"files": self.files, "seconds": round(self.seconds, 2), **{k: self.statuses[k] for k in (
            IMPORTED, EXACT, NEAR, HELD, ALREADY, REFUSED, FAILED)}, "refused_by_reason": dict(self.refused)}


def local_items(paths: Iterable[str]) -> Iterator[Item]:
    """Files as given; folders walked recursively, in sorted order (hidden entries skipped)."""
    for name in paths:
        path = Path(name)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for file in sorted(f for f in files if not f.startswith(".")):
                    yield _file(Path(root) / file)
        else:
            yield _file(path)


def _file(path: Path) -> Item:
    try:
        size = path.stat().st_size
    except OSError:
        size = -1  # reading it will say why
    return Item(str(path), size, path.read_bytes)


def s3_items(source, url: str) -> Iterator[Item]:
    for obj in source.list(url):
        yield Item(obj.url, obj.size, lambda obj=obj: source.read(obj))


def import_one(pipe: worker.Pipeline, item: Item, owner: str) -> Outcome:
    limit = pipe.settings.max_upload_bytes
    if item.size > limit:  # refused before a byte is read
        return Outcome(item.name, REFUSED, reason="too_large", message=f"{item.size} bytes is over the {limit}-byte limit")
    try:
        data = item.read()
    except OSError as exc:
        return Outcome(item.name, REFUSED, reason="unreadable", message=f"cannot read: {exc.strerror or exc}")
    except Unavailable as exc:
        return Outcome(item.name, FAILED, reason=exc.code, message=exc.message)
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        found = pipe.catalog.find_sha256(owner, sha256)
        if found is not None and found.state in RESTING:
            return Outcome(item.name, ALREADY, found.id)
        record = found  # None, or one an interrupted run left on the way
        if record is None or record.state == "validating":
            checked, decoded = worker.check(pipe, data, None, Path(item.name).name)
            if record is None:
                record = _new_record(pipe, data, sha256, owner, Path(item.name).name, checked.fmt)
            else:
                pipe.catalog.release(record.id, pipe.settings.job_lease_seconds)
            worker.keep(pipe, record, data, checked, decoded)
        else:
            pipe.catalog.release(record.id, pipe.settings.job_lease_seconds)
        state = worker.run_job(pipe, record.id)
        pipe.catalog.release(record.id, 0)
    except Rejected as exc:
        return Outcome(item.name, REFUSED, reason=exc.reason, message=exc.message)
    except (worker.RetryLater, Unavailable) as exc:
        return Outcome(item.name, FAILED, reason=getattr(exc, "code", "retry_later"), message=str(exc))
    except ImagehostError as exc:
        return Outcome(item.name, FAILED, reason=exc.code, message=exc.message)
    return _outcome(pipe, item.name, record.id, state, sha256)


def _new_record(pipe, data: bytes, sha256: str, owner: str, filename: str, fmt: str) -> ImageRecord:
    """Added `requested` (no worker's job), leased, then `validating`: a running origin's workers
    never see it without our lease on it."""
    record = ImageRecord(id=originals.new_id(), content_type=FORMATS[fmt].mime, width=0, height=0, bytes=len(data),
                         sha256=sha256, state="requested", created_at=datetime.now(timezone.utc), owner=owner,
                         filename=filename)
    pipe.catalog.add(record)
    pipe.catalog.release(record.id, pipe.settings.job_lease_seconds)
    pipe.catalog.transition(record.id, ("requested",), "validating")
    return record.with_state("validating")


def _outcome(pipe, name: str, image_id: str, state: str, sha256: str) -> Outcome:
    if state == "held":
        return Outcome(name, HELD, image_id)
    if state != "ready":
        return Outcome(name, FAILED, image_id, reason=state, message=f"the image ended {state}")
    record = pipe.catalog.get(image_id)
    if record.content_id and record.content_id != record.id:
        content = pipe.catalog.get_content(record.content_id)
        return Outcome(name, EXACT if content.sha256 == sha256 else NEAR, image_id)
    return Outcome(name, IMPORTED, image_id)


def run(pipe: worker.Pipeline, items: list[Item], owner: str, jobs: int = 1,
        on_done: Callable[[Outcome], None] = lambda outcome: None) -> Summary:
    """Import every item with `jobs` threads; `on_done` sees each outcome in input order."""
    summary = Summary()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="imagehost-ingest") as pool:
        for outcome in pool.map(lambda item: import_one(pipe, item, owner), items):
            summary.add(outcome)
            on_done(outcome)
    for timer in [t for t in threading.enumerate() if isinstance(t, threading.Timer)]:
        timer.join()  # perceptual merges delete what they replaced after the record caches' grace
    summary.seconds = time.monotonic() - started
    return summary
