"""A render whose source is archived (GLACIER, DEEP_ARCHIVE): a stand-in, or a 503 — never a 500.

Only an operator's lifecycle rule puts sources in a tier that needs a restore
(the defaults stop at Glacier Instant Retrieval, which reads at once). When a
variant that is not stored must be rendered from such a source:

 1. the restore is requested (origin/lifecycle/restore.py; S3 takes minutes to
    hours, by IMAGEHOST_RESTORE_TIER);
 2. if the content has a stored picture to stand in (the render intermediate,
    the public original, a larger `w` variant, or for `sq`/`sm` a larger square
    of the same crop; for a preset, a whole picture), the requested variant
    is rendered from it (downscaled, never upscaled) and answered with `Cache-Control: public, max-age=
    IMAGEHOST_COLD_STANDIN_SECONDS` instead of a year: it is not stored, and once
    the source is back the real render replaces it at the edge;
 3. otherwise the answer is 503 `source_archived` with a Retry-After of S3's
    completion time for the restore.

Animations get no stand-in (a stored variant may have dropped frames): 503.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import pyvips

from origin import keys
from origin.errors import RenderFailed
from origin.lifecycle import restore
from origin.pipeline import standin
from origin.ports.store import ARCHIVED, KeyMissing, ObjectArchived, StoredObject

log = logging.getLogger("imagehost.cold")
_SIZED = re.compile(r"^(w|sq|sm)([0-9]+)$")


@dataclass(frozen=True)
class Candidate:
    obj: StoredObject
    square: bool  # a crop of the kind asked for (sq or sm), else the whole picture
    width: int  # its width as far as its name tells (0: unknown, the intermediate)


def candidates(objects, req, record) -> list[Candidate]:
    """Stored pictures of the content that can stand in for the requested variant, best first."""
    whole, squares = [], []
    for obj in objects:
        name = obj.key.rpartition("/")[2]
        stem = name.partition(".")[0]
        if obj.tier in ARCHIVED or keys.object_class(obj.key) not in ("variant", "intermediate", "thumbnail"):
            continue
        sized = _SIZED.match(stem)
        if stem == "original":
            whole.append(Candidate(obj, False, record.width))
        elif stem == "intermediate":
            whole.append(Candidate(obj, False, 0))
        elif sized and sized.group(1) == "w":
            whole.append(Candidate(obj, False, min(int(sized.group(2)), record.width)))
        elif sized and sized.group(1) == req.kind:
            squares.append(Candidate(obj, True, int(sized.group(2))))
    need = req.size or (req.preset.width if req.preset is not None else record.width)

    def order(found: list[Candidate]) -> list[Candidate]:
        # the smallest one that is big enough (cheapest to decode, no upscaling), then the rest, largest first
        big = sorted((c for c in found if c.width == 0 or c.width >= need), key=lambda c: (c.width == 0, c.width))
        small = sorted((c for c in found if c not in big), key=lambda c: -c.width)
        return big + small

    if req.kind in ("sq", "sm"):
        fitting = [c for c in order(squares) if c.width >= need]
        return fitting + order(whole) + [c for c in order(squares) if c.width < need]
    return order(whole)


class ColdSources:
    def __init__(self, store, settings, encoding, metrics=None):
        self.store = store
        self.settings = settings
        self.encoding = encoding
        self.metrics = metrics
        self.lifetime = settings.cold_standin_seconds

    def _count(self, answer: str) -> None:
        if self.metrics is not None:
            self.metrics.cold_answers.labels(answer).inc()

    def stand_in(self, record, req, fmt: str, archived: ObjectArchived) -> bytes:
        """The requested variant rendered from a stored stand-in; SourceArchived (503) when there is none."""
        error = restore.unavailable(self.store, archived, self.settings)
        if record.pages <= 1:
            for candidate in candidates(self.store.objects(keys.prefix(record.content)), req, record):
                try:
                    out = standin.render_from(self.store.get(candidate.obj.key), req, fmt, self.encoding)
                except (KeyMissing, ObjectArchived, RenderFailed, pyvips.Error) as exc:
                    log.warning("stand-in %s for %s failed: %s", candidate.obj.key, req.name, exc)
                    continue
                log.info("source of %s is %s: %s rendered from %s", record.content, archived.tier, req.name,
                         candidate.obj.key)
                self._count("standin")
                return out
        self._count("unavailable")
        raise error
