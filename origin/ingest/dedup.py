"""Dedup: many uploads, one stored content.

Exact. An upload whose SHA-256 equals a live content's becomes an *alias*: its
record points at that content (refs+1, in the transaction that attaches it), and
no second source, master or variant is stored. The uploader keeps their own id,
record and URLs; the owner-only download returns the content's source, which is
the same bytes. The worker does it right after validation and the malware scan
(the bytes are proven an image and clean, nothing is stored yet), and
`imagehost ingest` before it stores anything. Exact dedup is always on.

Moderation of an alias: the content's bytes were already scored, so the alias
reuses that score (the model is deterministic: same bytes, same score) instead
of running the model again, and then goes through the same threshold rule as any
upload. A content held for one uploader is therefore held for every uploader of
the same bytes, and a reviewer's decision applies to the record reviewed: an
approval of one record does not publish another's.

Perceptual. A 64-bit pHash of the upright picture (computed in processing) is
indexed with the HashIndex port (multi-index hashing, full recall up to the
threshold) in the catalog's database. Another live, processed content within
IMAGEHOST_DEDUP_DISTANCE (Hamming, default 6) is a near-duplicate. Policy: the
content with the higher resolution (width × height; on a tie, the older one)
is the canonical one and the other collapses into it:

    new ≤ existing   the new upload's record is repointed to the existing content;
                     its eager thumbnails are never rendered
    new > existing   the new content becomes canonical (thumbnails first), then
                     the existing content's records are repointed to it and the
                     existing content is reclaimed

so no one's image gets worse. A collapsed content's source is kept, under
`sources/{content}/`, for the owner-only download of its uploaders (it is their
untouched upload, GPS and all; it is never served); everything else of it is
deleted once no record can still read it (origin/ingest/compact.py).

Switches (settings only): IMAGEHOST_DEDUP_PERCEPTUAL=0 turns perceptual collapse
off everywhere; IMAGEHOST_DEDUP_PERCEPTUAL_OPTOUT lists owners whose uploads are
never collapsed perceptually: a content with any record of theirs is neither
collapsed nor a target (exact aliasing still applies to them). With
IMAGEHOST_DEDUP_INLINE=0 the worker only indexes and `imagehost compact` finds
the duplicates later (throughput first).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from origin.ports.catalog import Content
from origin.ports.hash_index import HashIndex

log = logging.getLogger("imagehost.dedup")
GRACE_MARGIN_SECONDS = 1.0  # beyond the record cache: requests that read a record just before it expired


@dataclass(frozen=True)
class Policy:
    perceptual: bool = True
    distance: int = 6
    optout: frozenset[str] = frozenset()
    inline: bool = True
    grace_seconds: float = 3.0  # how long a repointed record may still read old keys

    @classmethod
    def from_settings(cls, settings) -> "Policy":
        return cls(settings.dedup_perceptual, settings.dedup_distance, settings.perceptual_optout,
                   settings.dedup_inline, settings.record_cache_seconds + GRACE_MARGIN_SECONDS)

    def allows(self, owners) -> bool:
        """Whether a content with records of these owners may collapse perceptually (either way)."""
        return self.perceptual and not (set(owners) & self.optout)


def rank(content: Content) -> tuple:
    """The canonical one of two near-duplicates has the higher rank: more pixels, then the older."""
    return (content.pixels, -content.created_at, content.id)


@dataclass(frozen=True)
class Neighbourhood:
    contents: tuple[Content, ...]  # live, processed near-duplicates that may collapse
    settled: bool  # False: a hit was still being processed (decide again later)


def neighbours(catalog, index: HashIndex, content: Content, policy: Policy) -> Neighbourhood:
    """The live, processed contents within the distance of `content` (not itself), with opted-out
    owners' contents left out. Index entries of contents that are gone or retired are removed."""
    hits = [cid for cid, _ in index.near(content.phash, policy.distance) if cid != content.id]
    if not hits:
        return Neighbourhood((), True)
    found = catalog.get_contents(hits)
    settled, out = True, []
    for cid in hits:
        other = found.get(cid)
        if other is None or not other.live:
            index.remove(cid)  # stale: the content was collapsed or deleted
        elif not other.processed:
            settled = False  # its thumbnails are not stored yet: not a target, and not decided
        else:
            out.append(other)
    if out and policy.optout:
        owners = catalog.content_owners([c.id for c in out])
        out = [c for c in out if policy.allows(owners.get(c.id, ()))]
    return Neighbourhood(tuple(out), settled)


@dataclass(frozen=True)
class Decision:
    link_to: Content | None  # the new content collapses into this one
    absorb: tuple[Content, ...]  # these collapse into the new content
    final: bool  # nothing left to decide later (compaction looks again when False)


def decide(content: Content, hood: Neighbourhood) -> Decision:
    """The policy for a newly processed content (phash set) and its neighbourhood."""
    better = [c for c in hood.contents if rank(c) > rank(content)]
    if better:
        return Decision(max(better, key=rank), (), True)
    return Decision(None, hood.contents, hood.settled)


def count_duplicate(metrics, kind: str, saved_bytes: int = 0) -> None:
    if metrics is None:
        return
    metrics.duplicates.labels(kind).inc()
    if saved_bytes > 0:
        metrics.dedup_bytes_saved.inc(saved_bytes)


def count_saved(metrics, saved_bytes: int) -> None:
    if metrics is not None and saved_bytes > 0:
        metrics.dedup_bytes_saved.inc(saved_bytes)
