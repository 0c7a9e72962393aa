"""`imagehost images [--owner O] [--state S] [--json]`, `imagehost delete ID...`,
`imagehost approve ID...`, `imagehost reject ID...`: the catalog seen and acted on by an operator.

Deletion is the API's own (origin/http/images.py remove_image): the record, the bytes nobody
else uses, every edge's cached variants (a purge an edge misses is retried from the durable
list). Approve and reject are the review queue's (origin/ingest/review.py).
"""
from __future__ import annotations

import json
import sys
from contextlib import contextmanager

from origin.admin.context import settings_for_admin
from origin.errors import ImagehostError, InvalidRequest
from origin.http.images import remove_image
from origin.ingest.review import approve
from origin.keys import check_id
from origin.ports.catalog import RecordMissing

COLUMNS = ("id", "owner", "state", "width", "height", "bytes", "created_at", "filename", "reason")


def _open(settings):
    from origin.wiring import open_catalog

    return open_catalog(settings.catalog)


def row(record) -> dict:
    return {"id": record.id, "owner": record.owner, "state": record.state, "width": record.width,
            "height": record.height, "bytes": record.bytes,
            "created_at": record.created_at.isoformat(timespec="seconds"), "filename": record.filename,
            "reason": record.reason, "score": record.nsfw_score, "content": record.content}


def list_images(settings, args) -> int:
    catalog = _open(settings_for_admin(settings))
    try:
        records = catalog.search(owner=args.owner, state=args.state, limit=args.limit)
    finally:
        catalog.close()
    rows = [row(r) for r in records]
    if args.json:
        for r in rows:
            print(json.dumps(r), flush=True)
        return 0
    widths = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in COLUMNS}
    print("  ".join(c.ljust(widths[c]) for c in COLUMNS).rstrip())
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in COLUMNS).rstrip())
    print(f"({len(rows)} images{'; more with --limit' if len(rows) == args.limit else ''})", file=sys.stderr)
    return 0


def _each(ids, act) -> int:
    failures = 0
    for image_id in ids:
        try:
            check_id(image_id)
            print(json.dumps({"id": image_id, **act(image_id)}), flush=True)
        except RecordMissing:
            print(f"imagehost: {image_id}: no such image", file=sys.stderr)
            failures += 1
        except ImagehostError as exc:  # say why, go on with the rest
            print(f"imagehost: {image_id}: {exc.message}", file=sys.stderr)
            failures += 1
    return 1 if failures else 0


@contextmanager
def _ports(settings):
    """The store, catalog, queue and edge purger the settings name, closed afterwards."""
    from origin.wiring import open_cdn, open_queue, open_store

    catalog = _open(settings)
    cdn = open_cdn(settings)
    try:
        yield open_store(settings), catalog, open_queue(settings, catalog), cdn
    finally:
        if cdn is not None:
            cdn.close()
        catalog.close()


def delete(settings, args) -> int:
    with _ports(settings_for_admin(settings)) as (store, catalog, _queue, cdn):
        def act(image_id: str) -> dict:
            catalog.get(image_id)  # an unknown id is an error, not a silent success
            remove_image(store, catalog, cdn, lambda _id: None, image_id)
            return {"state": "deleted"}

        return _each(args.ids, act)


def decide(settings, args) -> int:
    """approve / reject, as a reviewer named after the command line's user."""
    import getpass

    reviewer = f"{getpass.getuser()} (imagehost {args.command})"
    with _ports(settings_for_admin(settings)) as (store, catalog, queue, cdn):
        def act(image_id: str) -> dict:
            record = catalog.get(image_id)
            if record.state != "held":
                raise InvalidRequest(f"not waiting for review (it is {record.state})")
            if args.command == "approve":
                approve(catalog, queue, image_id, reviewer)
                return {"state": "processing"}
            remove_image(store, catalog, cdn, lambda _id: None, image_id)
            return {"state": "deleted"}

        return _each(args.ids, act)
