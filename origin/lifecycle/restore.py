"""Archived sources: ask for them back, and say how long that takes.

A source in GLACIER or DEEP_ARCHIVE (only if an operator's lifecycle rule puts
it there: the defaults never do) cannot be read until S3 restores a copy. The
first read that finds it so requests the restore (IMAGEHOST_RESTORE_TIER speed,
kept IMAGEHOST_RESTORE_DAYS days); the answer is a 503 whose Retry-After is
S3's published completion time for that tier and speed (delivery first tries a
stand-in: origin/pipeline/cold.py). Once restored, reads work as before.
"""
from __future__ import annotations

import logging

from origin.errors import SourceArchived
from origin.ports.store import ObjectArchived

log = logging.getLogger("imagehost.restore")
# S3's published completion times (upper ends), in seconds
ETA = {
    ("GLACIER", "Expedited"): 5 * 60,
    ("GLACIER", "Standard"): 5 * 3600,
    ("GLACIER", "Bulk"): 12 * 3600,
    ("DEEP_ARCHIVE", "Standard"): 12 * 3600,
    ("DEEP_ARCHIVE", "Bulk"): 48 * 3600,
}


def speed_for(tier: str, speed: str) -> str:
    return "Standard" if tier == "DEEP_ARCHIVE" and speed == "Expedited" else speed  # no expedited there


def request(store, archived: ObjectArchived, days: int, speed: str) -> int:
    """Request the restore of an archived object; returns seconds until it should be readable."""
    speed = speed_for(archived.tier, speed)
    state = store.restore(archived.key, days, speed)
    if state.state in ("restored", "not_archived"):
        return 1  # it became readable just now: try again at once
    if state.state == "requested":
        log.info("restore of %s (%s) requested: %s, %d days", archived.key, state.tier, speed, days)
    return ETA.get((state.tier or archived.tier, speed), ETA[("GLACIER", "Standard")])


def unavailable(store, archived: ObjectArchived, settings, what: str = "the source of this image") -> SourceArchived:
    """The error to answer with: the restore is requested, and Retry-After says when to come back."""
    wait = request(store, archived, settings.restore_days, settings.restore_tier)
    return SourceArchived(f"{what} is in {archived.tier}; a restore was requested, try again later",
                          retry_after=wait, tier=archived.tier)


def read(store, key: str, settings) -> bytes:
    """store.get(key), or SourceArchived (with the restore requested) when the object is archived."""
    try:
        return store.get(key)
    except ObjectArchived as exc:
        raise unavailable(store, exc, settings, "this upload") from None
