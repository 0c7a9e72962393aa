"""The record fallback: a ready record's delivery facts, kept in the store, so a miss can still be
rendered while the catalog cannot be reached.

    write(store, record)   before a record becomes `ready` (undone if that transition fails), and
                           when compaction has moved its records to another content, before the
                           old content's bytes go
    remove(store, id)      before a record is deleted from the catalog: if the store refuses,
                           the deletion stops there (503) and nothing was deleted
    read(store, id)        only when the catalog is unavailable

Why a deleted or held image is never served from it: a manifest exists only for a record that
passed validation, the malware scan and moderation (it is written at the last step, `processing`,
on the way to `ready`; a held image never gets there, and nothing moves an image from `ready` back
to `held`), and it is deleted before the catalog's record is, so a deletion that succeeded always
took its manifest with it. A record the catalog changed since (a repoint) is answered 503, not
404, when its old keys are already gone (origin/pipeline/variants.py).
"""
from __future__ import annotations

import json

from origin import keys
from origin.ports.catalog import ImageRecord
from origin.ports.store import Store

FIELDS = ("id", "content_id", "content_type", "width", "height", "has_alpha", "pages")
OPTIONAL = ("thumbhash", "qualities")  # absent from manifests written before it existed


def write(store: Store, served: ImageRecord) -> None:
    """Keep the delivery facts of a record as its URLs serve it (its content's keys, picture, placeholder,
    qualities)."""
    facts = {name: getattr(served, name) for name in (*FIELDS, *OPTIONAL)}
    store.put(keys.record_key(served.id), json.dumps(facts).encode(), "application/json")


def remove(store: Store, image_id: str) -> None:
    store.delete(keys.record_key(image_id))


def read(store: Store, image_id: str) -> ImageRecord:
    """The record as last made ready; KeyMissing when there is none."""
    facts = json.loads(store.get(keys.record_key(image_id)))
    return ImageRecord(bytes=0, sha256="", state="ready", **{name: facts[name] for name in FIELDS},
                       **{name: facts.get(name) for name in OPTIONAL})
