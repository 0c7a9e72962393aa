"""Catalog port: image records and their states, and the contents they point at.

An image record is what an uploader owns: its id, its URLs (`/images/{record id}/…`),
its state. A content is the stored bytes behind it: the source, the master, the
public original and every variant, under `images/{content id}/…` in the store.
Several records may point at one content (dedup: origin/ingest/dedup.py); a record
whose `content_id` is "" (made before contents existed) is its own content.

    contents   id, sha256 (unique among live contents), phash, thumbhash, width, height, refs
               (how many records point at it), state (live | deleting), …
    merges     compaction intents: content `from_id` collapses into `into_id`
               (origin/ingest/compact.py), written before anything moves

Reference counts only change inside catalog transactions that also move the
records (attach, remove_record, repoint), so a record never points at a content
that is `deleting`, and a content's objects are deleted only once it is.

Adapters: `catalog_sqlite.SqliteCatalog` (embedded default) and
`catalog_postgres.PostgresCatalog`; the content and merge statements they share
live in `catalog_contents.py`. Both raise `RecordMissing` / `ContentMissing` for an
unknown id and `origin.errors.CatalogUnavailable` when the database cannot be reached.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Protocol

from origin.errors import NotFound, Unavailable

# An image's life (see DESIGN.md). Only `ready` images are served publicly.
STATES = (
    "requested",
    "uploaded",
    "validating",
    "moderating",
    "processing",
    "ready",
    "quarantined",
    "held",
)
SERVABLE = "ready"


CONTENT_STATES = ("live", "deleting")
MERGE_STEPS = ("planned", "preserved", "repointed", "done", "cancelled")
OPEN_MERGE_STEPS = ("planned", "preserved", "repointed")


class RecordMissing(NotFound):
    code = "not_found"


class ContentMissing(NotFound):
    code = "not_found"


class MaintenanceBusy(Unavailable):
    """Another maintenance run (`imagehost compact` or `imagehost lifecycle`) holds the guard."""

    code = "maintenance_busy"


@dataclass(frozen=True)
class ImageRecord:
    id: str
    content_type: str
    width: int
    height: int
    bytes: int
    sha256: str
    state: str = "ready"
    has_alpha: bool = False
    pages: int = 1
    created_at: datetime = datetime.fromtimestamp(0, timezone.utc)
    owner: str = ""
    filename: str = ""
    callback_url: str = ""
    reason: str = ""  # machine-readable, when quarantined or held
    detail: str = ""  # the same for people
    metadata: str = "{}"  # JSON: what processing extracted (never served publicly)
    phash: int | None = None  # 64-bit perceptual hash, unsigned
    nsfw_score: float | None = None
    content_id: str = ""  # the content it serves; "" = its own (id), or none yet
    source_key: str = ""  # where its untouched upload lives, when not its content's source
    qualities: str | None = None  # its content's, as delivery reads it (records.served); not an images column
    attempts: int = 0  # times a worker claimed it
    seq: int = 0  # insertion order, assigned by the catalog (list cursor)
    thumbhash: str | None = None  # its content's ThumbHash (base64), as served; not an images column

    @property
    def servable(self) -> bool:
        return self.state == SERVABLE

    @property
    def content(self) -> str:
        """The content id its store keys live under."""
        return self.content_id or self.id

    def with_state(self, state: str) -> "ImageRecord":
        return replace(self, state=state)


COLUMNS = (
    "id", "content_type", "width", "height", "bytes", "sha256", "state", "has_alpha", "pages", "created_at",
    "owner", "filename", "callback_url", "reason", "detail", "metadata", "phash", "nsfw_score", "attempts",
    "content_id", "source_key",
)
# columns `transition` may set beside the state (content_id and source_key move only with
# the reference counts, in attach / remove_record / repoint)
UPDATABLE = frozenset(COLUMNS) - {"id", "created_at", "owner", "attempts", "state", "content_id", "source_key"}


@dataclass(frozen=True)
class Content:
    """Stored bytes that one or more records serve (see the module docstring)."""

    id: str
    sha256: str
    content_type: str  # of its source
    width: int  # display size, after EXIF orientation
    height: int
    has_alpha: bool = False
    pages: int = 1
    bytes: int = 0  # of its source
    phash: int | None = None  # set once processed (thumbnails stored): it may be a dedup target
    refs: int = 0
    state: str = "live"
    nsfw_score: float | None = None  # the moderation model's score of these bytes, once run
    checked: bool = False  # looked for perceptual duplicates (inline or by compaction)
    created_at: float = 0.0  # epoch seconds, the database's clock
    repointed_at: float = 0.0  # when records were last moved away from it (0: never)
    thumbhash: str | None = None  # placeholder (origin/pipeline/placeholders.py), base64; None: not made yet
    qualities: str | None = None  # JSON {format: encoder quality} chosen at ingest (pipeline/targeting.py)

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def processed(self) -> bool:
        return self.phash is not None

    @property
    def live(self) -> bool:
        return self.state == "live"


CONTENT_COLUMNS = ("id", "sha256", "content_type", "width", "height", "has_alpha", "pages", "bytes", "phash", "refs",
                   "state", "nsfw_score", "checked", "created_at", "repointed_at", "thumbhash", "qualities")


@dataclass(frozen=True)
class Attached:
    """What `attach` did: the record now points at `content` (alias: an existing one)."""

    content: Content
    alias: bool


@dataclass(frozen=True)
class Removed:
    """What `remove_record` did: the record is gone; its content's state after the decrement."""

    record: ImageRecord
    content: Content | None  # None: it had none (or none is known)
    source_orphaned: bool  # its own source_key is referenced by no record any more


@dataclass(frozen=True)
class Merge:
    """A compaction intent: every record of content `from_id` moves to `into_id`, then `from_id` goes."""

    id: int
    from_id: str
    into_id: str
    kind: str  # perceptual | exact
    step: str  # planned | preserved | repointed | done | cancelled
    created_at: float = 0.0
    repointed_at: float = 0.0


@dataclass(frozen=True)
class UsageNote:
    """What an origin process saw of one content since its last flush (origin/lifecycle/usage.py)."""

    content_id: str
    last_access: float  # epoch seconds
    added_bytes: int = 0  # lazy variants it stored
    rendered: frozenset[str] = frozenset()  # their names (w1200.avif …)


@dataclass(frozen=True)
class Usage:
    content_id: str
    last_access: float
    variant_bytes: int
    evicted: frozenset[str] = frozenset()  # names evicted and not rendered again since


@dataclass(frozen=True)
class DedupSummary:
    records: int  # ready image records
    contents: int  # live contents
    content_bytes: int  # of their sources
    exact_aliases: int  # records that share another upload's content, byte for byte
    exact_bytes: int  # their uploads' bytes (stored once)
    collapsed_records: int  # records repointed to a near-duplicate content
    collapsed_contents: int  # distinct contents collapsed (their sources kept under sources/)


def check_fields(fields: dict) -> dict:
    unknown = set(fields) - UPDATABLE
    if unknown:
        raise ValueError(f"cannot update {sorted(unknown)}")
    return fields


def signed64(value: int | None) -> int | None:
    """An unsigned 64-bit hash as the signed integer databases store."""
    return None if value is None else value - (1 << 64) if value >= 1 << 63 else value


def unsigned64(value: int | None) -> int | None:
    return None if value is None else value + (1 << 64) if value < 0 else value


class Catalog(Protocol):
    def add(self, record: ImageRecord) -> None: ...

    def get(self, image_id: str) -> ImageRecord: ...

    def set_state(self, image_id: str, state: str) -> None: ...

    def transition(self, image_id: str, from_states: tuple[str, ...], to_state: str, **fields) -> bool:
        """Atomically move from one of `from_states` to `to_state`, setting `fields`; False if not in them."""
        ...

    def claim(self, states: tuple[str, ...], lease_seconds: float) -> ImageRecord | None:
        """Lease the oldest image in `states` whose lease has run out (a job for a worker)."""
        ...

    def release(self, image_id: str, delay_seconds: float) -> None:
        """End a lease; the image may be claimed again after `delay_seconds`."""
        ...

    def list_owner(self, owner: str, limit: int, before_seq: int | None = None) -> list[ImageRecord]: ...

    def list_state(self, state: str, limit: int) -> list[ImageRecord]: ...

    def delete(self, image_id: str) -> None:
        """`remove_record` without the answer."""
        ...

    # operators' reads (catalog_queries.py)

    def find_sha256(self, owner: str, sha256: str) -> ImageRecord | None: ...

    def search(self, owner: str | None = None, state: str | None = None, limit: int = 100,
               before_seq: int | None = None) -> list[ImageRecord]: ...

    def state_counts(self) -> dict[str, tuple[int, datetime | None]]:
        """Per state: how many records, and the oldest one's created_at."""
        ...

    # contents (catalog_contents.py has the statements and their transactions)

    def attach(self, image_id: str, content: Content, from_states: tuple[str, ...]) -> Attached | None:
        """Point the record at the live content with content.sha256 (refs+1: an alias), or create
        `content` for it (refs 1), in one transaction. Idempotent: a record that already has a
        content keeps it. None when the record is gone or not in `from_states`."""
        ...

    def get_content(self, content_id: str) -> Content: ...

    def get_with_content(self, image_id: str) -> tuple[ImageRecord, Content | None]:
        """The record and, in the same read, its content (None when it has none: a record made
        before contents existed, or one not yet attached)."""
        ...

    def get_contents(self, content_ids) -> dict[str, Content]: ...

    def records_of(self, content_id: str) -> list[ImageRecord]:
        """Every record that serves this content."""
        ...

    def content_owners(self, content_ids) -> dict[str, set[str]]: ...

    def set_content_score(self, content_id: str, score: float) -> None: ...

    def mark_processed(self, content_id: str, phash: int) -> bool:
        """Its thumbnails are stored: it may serve as a dedup target. False unless live."""
        ...

    def set_qualities(self, content_id: str, qualities: str | None) -> None:
        """The encoder qualities chosen for its picture (JSON; None: the fixed ones)."""
        ...

    def set_checked(self, content_ids, checked: bool = True) -> None: ...

    def set_content_thumbhash(self, content_id: str, thumbhash: str) -> None:
        """Keep the content's placeholder (base64 ThumbHash); every record that serves it shares it."""
        ...

    def remove_record(self, image_id: str) -> Removed | None:
        """Delete the record and release its content (refs-1; at 0 the content turns `deleting`)."""
        ...

    def drop_content(self, content_id: str) -> bool:
        """Delete the row of a `deleting` content nobody references (after its objects)."""
        ...

    def reclaimable(self, grace_seconds: float, limit: int) -> list[Content]:
        """Contents to delete: `deleting`, or live with no reference, and not repointed within the grace."""
        ...

    def unchecked(self, limit: int, after_id: str = "") -> list[Content]:
        """Live, processed contents not yet looked at for perceptual duplicates, by id."""
        ...

    def plan_merge(self, from_id: str, into_id: str, kind: str) -> Merge | None:
        """Write a merge intent (None when `from_id` already has an open one)."""
        ...

    def open_merges(self) -> list[Merge]: ...

    def get_merge(self, merge_id: int) -> Merge: ...

    def db_now(self) -> float:
        """The database's clock (epoch seconds): grace periods are measured on it."""
        ...

    def set_merge_step(self, merge_id: int, step: str) -> None: ...

    def repoint(self, merge: Merge, kept_source_key: str, protected_owners=frozenset()) -> bool:
        """One transaction: every record of merge.from_id moves to merge.into_id (records without a
        source_key of their own get `kept_source_key`), the counts move with them, from_id turns
        `deleting`, the intent becomes `repointed`. False (intent cancelled) when either content is
        not live or a record of either belongs to a protected owner."""
        ...

    def content_in_use(self, content_ids) -> set[str]:
        """Of these ids: those with a content row, or a record that uses them as its store prefix."""
        ...

    def sources_in_use(self, keys) -> set[str]: ...

    # variant usage and the maintenance guard (catalog_usage.py)

    def note_usage(self, notes) -> int:
        """A batch of UsageNotes in one transaction; returns re-renders of evicted variants among them."""
        ...

    def usage_total(self) -> int: ...

    def coldest(self, limit: int, before: float, after: tuple[float, str] = (-1.0, "")) -> list[Usage]: ...

    def get_usage(self, content_id: str) -> Usage | None: ...

    def mark_evicting(self, content_id: str, names, now: float) -> None: ...

    def mark_evicted(self, content_id: str, remaining: int = 0) -> None: ...

    def set_usage_bytes(self, measured) -> None: ...

    def prune_usage(self) -> int: ...

    def dedup_summary(self) -> DedupSummary: ...

    def maintenance_lock(self, name: str = "maintenance"):
        """A context manager: held by one process at a time, released when it exits or dies;
        MaintenanceBusy at once when another holds it."""
        ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


def check_state(state: str) -> str:
    if state not in STATES:
        raise ValueError(f"unknown state {state!r}")
    return state
