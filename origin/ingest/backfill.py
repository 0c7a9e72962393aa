"""Backfill: contents stored before render intermediates existed get theirs.

`imagehost compact` runs it as its last step ("intermediates"); the delivery makes the
same intermediate on the first miss that needs one (pipeline/variants.py), so this only
moves that work off the request path. Idempotent: a content that has its intermediate,
or needs none (pipeline/sources.py), is skipped; a run killed half-way is finished by
the next one.
"""
from __future__ import annotations

import logging

from origin import keys
from origin.pipeline import sources
from origin.ports.store import KeyMissing

log = logging.getLogger("imagehost.backfill")
BATCH = 500


def intermediates(store, catalog, sizes: tuple[int, ...]) -> int:
    """Make every missing intermediate of a live content; returns how many were made."""
    if not sizes:
        return 0
    made = 0
    names = list(store.folders(keys.IMAGES))
    for start in range(0, len(names), BATCH):
        for content in catalog.get_contents(names[start: start + BATCH]).values():
            pic = sources.Picture.of_content(content)
            missing = [s for s in sources.intermediates(pic, sizes) if not store.exists(s.key)]
            if not content.live or not missing:
                continue
            try:
                original = store.get(sources.original(pic).key)
            except KeyMissing:  # reclaimed meanwhile
                continue
            made_now = sources.make(original, pic, sizes)  # one decode makes every rung: the missing are stored
            for source in missing:
                store.put(source.key, made_now[source.rung], sources.mime(pic))
                made += 1
                log.info("backfill: %s", source.key)
    return made
