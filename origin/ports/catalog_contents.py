"""Contents and merge intents: the statements both catalog adapters share.

`ContentsMixin` is mixed into `SqliteCatalog` and `PostgresCatalog`. Statements
are written with `?` placeholders; an adapter provides

    _tx()        a context manager: one transaction, yielding run(sql, params) →
                 (rows, rowcount); it raises `Conflict` on a unique violation, a
                 deadlock or a serialization failure (the transaction is retried)
    _exec()      one statement outside a transaction, → (rows, rowcount)
    _to_record() a row of (COLUMNS…, seq) → ImageRecord
    LOCK         " FOR UPDATE" where row locks exist (PostgreSQL), else ""
    NOW          the database's clock in epoch seconds, as an SQL expression

SQLite runs every transaction as BEGIN IMMEDIATE (one writer at a time). On
PostgreSQL (READ COMMITTED) the transactions lock the rows they change; a
transaction that loses a race (two first uploads of the same bytes, a deadlock
between a delete and a repoint) is retried from the start.

Invariants (every method that changes them is one transaction):
    contents.refs = number of records whose content_id is that content
    a record never points at a `deleting` content
    at most one live content per sha256 (a partial unique index)
"""
from __future__ import annotations

import random
import time
from dataclasses import replace

from origin.errors import CatalogUnavailable
from origin.ports.catalog import (COLUMNS, CONTENT_COLUMNS, OPEN_MERGE_STEPS, Attached, Content, ContentMissing,
                                  Merge, RecordMissing, Removed, signed64, unsigned64)

CONTENT_SELECT = ", ".join(CONTENT_COLUMNS)
RECORD_SELECT = f"{', '.join(COLUMNS)}, seq"
RECORD_WIDTH = len(COLUMNS) + 1
JOINED_SELECT = ", ".join([*(f"i.{c}" for c in (*COLUMNS, "seq")), *(f"c.{c}" for c in CONTENT_COLUMNS)])
MERGE_COLUMNS = ("id", "from_id", "into_id", "kind", "step", "created_at", "repointed_at")
MERGE_SELECT = ", ".join(MERGE_COLUMNS)
OPEN_STEPS_SQL = ", ".join(f"'{step}'" for step in OPEN_MERGE_STEPS)
CHUNK = 500
TX_ATTEMPTS = 8


class Conflict(Exception):
    """The transaction lost a race (unique violation, deadlock, serialization failure): run it again."""


def content_from_row(row) -> Content:
    values = dict(zip(CONTENT_COLUMNS, row))
    values["has_alpha"] = bool(values["has_alpha"])
    values["checked"] = bool(values["checked"])
    values["phash"] = unsigned64(values["phash"])
    values["created_at"] = float(values["created_at"])
    values["repointed_at"] = float(values["repointed_at"])
    return Content(**values)


def merge_from_row(row) -> Merge:
    values = dict(zip(MERGE_COLUMNS, row))
    values["created_at"] = float(values["created_at"])
    values["repointed_at"] = float(values["repointed_at"])
    return Merge(**values)


def marks(values) -> str:
    return ", ".join("?" * len(values))


def chunks(values) -> list[list]:
    values = list(dict.fromkeys(values))
    return [values[i: i + CHUNK] for i in range(0, len(values), CHUNK)]


class ContentsMixin:
    LOCK = ""
    NOW = ""

    # adapters provide _tx, _exec, _to_record

    def _transact(self, work):
        """Run work(run) in a transaction, again from the start when it loses a race."""
        for attempt in range(TX_ATTEMPTS):
            try:
                with self._tx() as run:
                    return work(run)
            except Conflict:
                time.sleep(random.uniform(0, 0.01 * (attempt + 1)))
        raise CatalogUnavailable("catalog: a transaction kept losing races; try again")

    # ------------------------------------------------------------------ contents

    def attach(self, image_id: str, content: Content, from_states: tuple[str, ...]) -> Attached | None:
        def work(run):
            rows, _ = run(f"SELECT state, content_id FROM images WHERE id = ?{self.LOCK}", (image_id,))
            if not rows or rows[0][0] not in from_states:
                return None
            if rows[0][1]:  # attached before (a job that runs twice)
                current, _ = run(f"SELECT {CONTENT_SELECT} FROM contents WHERE id = ?", (rows[0][1],))
                if current:
                    return Attached(content_from_row(current[0]), alias=current[0][0] != image_id)
            found, _ = run(f"SELECT {CONTENT_SELECT} FROM contents WHERE sha256 = ? AND state = 'live'{self.LOCK}",
                           (content.sha256,))
            if found:
                existing = content_from_row(found[0])
                run("UPDATE contents SET refs = refs + 1 WHERE id = ?", (existing.id,))
                run("UPDATE images SET content_id = ?, source_key = '' WHERE id = ?", (existing.id, image_id))
                return Attached(replace(existing, refs=existing.refs + 1), alias=True)
            values = (content.id, content.sha256, content.content_type, content.width, content.height,
                      int(content.has_alpha), content.pages, content.bytes, signed64(content.phash),
                      None if content.nsfw_score is None else float(content.nsfw_score))
            created, _ = run(
                "INSERT INTO contents (id, sha256, content_type, width, height, has_alpha, pages, bytes, phash,"
                " nsfw_score, refs, state, checked, created_at, repointed_at)"
                f" VALUES ({marks(values)}, 1, 'live', 0, {self.NOW}, 0) RETURNING {CONTENT_SELECT}", values)
            run("UPDATE images SET content_id = ?, source_key = '' WHERE id = ?", (content.id, image_id))
            return Attached(content_from_row(created[0]), alias=False)

        return self._transact(work)

    def get_content(self, content_id: str) -> Content:
        rows, _ = self._exec(f"SELECT {CONTENT_SELECT} FROM contents WHERE id = ?", (content_id,))
        if not rows:
            raise ContentMissing(f"no content {content_id}")
        return content_from_row(rows[0])

    def get_with_content(self, image_id: str):
        rows, _ = self._exec(f"SELECT {JOINED_SELECT} FROM images i LEFT JOIN contents c ON c.id = i.content_id "
                             "WHERE i.id = ?", (image_id,))
        if not rows:
            raise RecordMissing(f"no image {image_id}")
        record, content = rows[0][:RECORD_WIDTH], rows[0][RECORD_WIDTH:]
        return self._to_record(record), content_from_row(content) if content[0] is not None else None

    def get_contents(self, content_ids) -> dict[str, Content]:
        out = {}
        for part in chunks(content_ids):
            rows, _ = self._exec(f"SELECT {CONTENT_SELECT} FROM contents WHERE id IN ({marks(part)})", tuple(part))
            out.update((row[0], content_from_row(row)) for row in rows)
        return out

    def records_of(self, content_id: str) -> list:
        rows, _ = self._exec(f"SELECT {RECORD_SELECT} FROM images WHERE content_id = ? ORDER BY seq", (content_id,))
        return [self._to_record(row) for row in rows]

    def content_owners(self, content_ids) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for part in chunks(content_ids):
            rows, _ = self._exec(f"SELECT DISTINCT content_id, owner FROM images WHERE content_id IN ({marks(part)})",
                                 tuple(part))
            for content_id, owner in rows:
                out.setdefault(content_id, set()).add(owner)
        return out

    def set_content_score(self, content_id: str, score: float) -> None:
        self._exec("UPDATE contents SET nsfw_score = ? WHERE id = ?", (float(score), content_id))

    def set_qualities(self, content_id: str, qualities: str | None) -> None:
        self._exec("UPDATE contents SET qualities = ? WHERE id = ?", (qualities, content_id))

    def mark_processed(self, content_id: str, phash: int) -> bool:
        _, count = self._exec("UPDATE contents SET phash = ? WHERE id = ? AND state = 'live'",
                              (signed64(phash), content_id))
        return count == 1

    def set_content_thumbhash(self, content_id: str, thumbhash: str) -> None:
        self._exec("UPDATE contents SET thumbhash = ? WHERE id = ?", (thumbhash, content_id))

    def set_checked(self, content_ids, checked: bool = True) -> None:
        for part in chunks(content_ids):
            self._exec(f"UPDATE contents SET checked = ? WHERE id IN ({marks(part)})", (int(checked), *part))

    def unchecked(self, limit: int, after_id: str = "") -> list[Content]:
        rows, _ = self._exec(
            f"SELECT {CONTENT_SELECT} FROM contents WHERE checked = 0 AND state = 'live' AND phash IS NOT NULL"
            " AND id > ? ORDER BY id LIMIT ?", (after_id, limit))
        return [content_from_row(row) for row in rows]

    def remove_record(self, image_id: str) -> Removed | None:
        def work(run):
            rows, _ = run(f"SELECT {RECORD_SELECT} FROM images WHERE id = ?{self.LOCK}", (image_id,))
            if not rows:
                return None
            record = self._to_record(rows[0])
            run("DELETE FROM images WHERE id = ?", (image_id,))
            content = None
            if record.content_id:
                got, _ = run(
                    "UPDATE contents SET refs = refs - 1,"
                    " state = CASE WHEN refs <= 1 THEN 'deleting' ELSE state END"
                    f" WHERE id = ? RETURNING {CONTENT_SELECT}", (record.content_id,))
                content = content_from_row(got[0]) if got else None
            orphaned = False
            if record.source_key:
                left, _ = run("SELECT count(*) FROM images WHERE source_key = ?", (record.source_key,))
                orphaned = left[0][0] == 0
            return Removed(record, content, orphaned)

        return self._transact(work)

    def delete(self, image_id: str) -> None:
        self.remove_record(image_id)

    def reclaimable(self, grace_seconds: float, limit: int) -> list[Content]:
        # a live content nobody references is an anomaly (no transaction makes one): retire it first,
        # atomically, so that no alias can attach while its objects go
        self._exec("UPDATE contents SET state = 'deleting' WHERE state = 'live' AND refs <= 0"
                   " AND NOT EXISTS (SELECT 1 FROM images WHERE images.content_id = contents.id)")
        rows, _ = self._exec(
            f"SELECT {CONTENT_SELECT} FROM contents WHERE state = 'deleting' AND repointed_at <= {self.NOW} - ?"
            " AND NOT EXISTS (SELECT 1 FROM images WHERE images.content_id = contents.id) ORDER BY id LIMIT ?",
            (float(grace_seconds), limit))
        return [content_from_row(row) for row in rows]

    def drop_content(self, content_id: str) -> bool:
        _, count = self._exec(
            "DELETE FROM contents WHERE id = ? AND state = 'deleting'"
            " AND NOT EXISTS (SELECT 1 FROM images WHERE images.content_id = contents.id)", (content_id,))
        return count == 1

    def db_now(self) -> float:
        rows, _ = self._exec(f"SELECT {self.NOW}")
        return float(rows[0][0])

    # -------------------------------------------------------------- merge intents

    def plan_merge(self, from_id: str, into_id: str, kind: str) -> Merge | None:
        def work(run):
            rows, _ = run(f"INSERT INTO merges (from_id, into_id, kind, step, created_at, repointed_at)"
                          f" VALUES (?, ?, ?, 'planned', {self.NOW}, 0) RETURNING {MERGE_SELECT}",
                          (from_id, into_id, kind))
            return merge_from_row(rows[0])

        try:
            with self._tx() as run:
                return work(run)
        except Conflict:  # an open intent for from_id exists already
            return None

    def open_merges(self) -> list[Merge]:
        rows, _ = self._exec(f"SELECT {MERGE_SELECT} FROM merges WHERE step IN ({OPEN_STEPS_SQL}) ORDER BY id")
        return [merge_from_row(row) for row in rows]

    def get_merge(self, merge_id: int) -> Merge:
        rows, _ = self._exec(f"SELECT {MERGE_SELECT} FROM merges WHERE id = ?", (merge_id,))
        if not rows:
            raise ContentMissing(f"no merge {merge_id}")
        return merge_from_row(rows[0])

    def set_merge_step(self, merge_id: int, step: str) -> None:
        self._exec("UPDATE merges SET step = ? WHERE id = ?", (step, merge_id))

    def repoint(self, merge: Merge, kept_source_key: str, protected_owners=frozenset()) -> bool:
        def cancel(run) -> bool:
            run("UPDATE merges SET step = 'cancelled' WHERE id = ?", (merge.id,))
            return False

        def work(run):
            pair = sorted({merge.from_id, merge.into_id})  # lock in id order: no deadlock between two repoints
            rows, _ = run(f"SELECT {CONTENT_SELECT} FROM contents WHERE id IN ({marks(pair)}) ORDER BY id{self.LOCK}",
                          tuple(pair))
            got = {row[0]: content_from_row(row) for row in rows}
            step, _ = run("SELECT step FROM merges WHERE id = ?", (merge.id,))
            if not step or step[0][0] not in ("planned", "preserved"):
                return bool(step) and step[0][0] in ("repointed", "done")  # done before
            source, target = got.get(merge.from_id), got.get(merge.into_id)
            if len(pair) != 2 or source is None or target is None or not source.live or not target.live:
                return cancel(run)
            if protected_owners:
                owners, _ = run(f"SELECT DISTINCT owner FROM images WHERE content_id IN ({marks(pair)})", tuple(pair))
                if any(owner in protected_owners for (owner,) in owners):
                    return cancel(run)
            run("UPDATE images SET source_key = ? WHERE content_id = ? AND source_key = ''",
                (kept_source_key, merge.from_id))
            _, moved = run("UPDATE images SET content_id = ? WHERE content_id = ?", (merge.into_id, merge.from_id))
            run("UPDATE contents SET refs = refs + ? WHERE id = ?", (moved, merge.into_id))
            run(f"UPDATE contents SET refs = 0, state = 'deleting', repointed_at = {self.NOW} WHERE id = ?",
                (merge.from_id,))
            run(f"UPDATE merges SET step = 'repointed', repointed_at = {self.NOW} WHERE id = ?", (merge.id,))
            return True

        return self._transact(work)

    # ------------------------------------------------------------ orphan checks

    def content_in_use(self, content_ids) -> set[str]:
        used: set[str] = set()
        for part in chunks(content_ids):
            params = tuple(part)
            rows, _ = self._exec(f"SELECT id FROM contents WHERE id IN ({marks(part)})", params)
            used.update(r[0] for r in rows)
            rows, _ = self._exec(f"SELECT content_id FROM images WHERE content_id IN ({marks(part)})", params)
            used.update(r[0] for r in rows)
            # records made before contents existed keep their objects under their own id
            rows, _ = self._exec(f"SELECT id FROM images WHERE content_id = '' AND id IN ({marks(part)})", params)
            used.update(r[0] for r in rows)
        return used

    def sources_in_use(self, keys) -> set[str]:
        used: set[str] = set()
        for part in chunks(keys):
            rows, _ = self._exec(f"SELECT DISTINCT source_key FROM images WHERE source_key IN ({marks(part)})",
                                 tuple(part))
            used.update(r[0] for r in rows)
        return used
