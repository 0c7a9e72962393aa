"""Variant usage and the maintenance guard: what both catalog adapters share (beside catalog_contents.py).

    content_usage   per content (its store folder): the last access any origin
                    process saw, the bytes of lazy variants it has stored (an
                    estimate kept by batched notes, made exact by the lifecycle's
                    store walk), and the names eviction removed that were not
                    rendered again since (to count re-renders caused by eviction)

Origin processes write it in batches (origin/lifecycle/usage.py), never once per
request; eviction (origin/lifecycle/evict.py) reads it coldest first.

The maintenance guard (`maintenance_lock`) keeps `imagehost compact` and
`imagehost lifecycle` from running at once: an advisory lock (PostgreSQL) or a
file lock beside the database (SQLite), both released by the system when their
holder dies, so a run killed with SIGKILL never blocks the next one.
"""
from __future__ import annotations

from dataclasses import dataclass

from origin.ports.catalog import DedupSummary, Usage
from origin.ports.catalog_contents import chunks, marks

USAGE_COLUMNS = "content_id, last_access, variant_bytes, evicted"


def _usage(row) -> Usage:
    return Usage(row[0], float(row[1]), int(row[2]), frozenset(row[3].split()))


@dataclass(frozen=True)
class _Row:
    content_id: str
    last_access: float
    added: int


class UsageMixin:
    # adapters provide _transact (catalog_contents.ContentsMixin), _exec, LOCK

    def note_usage(self, notes) -> int:
        """Add a batch of notes (accesses, stored variants) in one transaction; returns how many of
        the variants stored had been evicted before (re-renders caused by eviction)."""
        merged: dict[str, list] = {}
        for note in notes:
            cur = merged.setdefault(note.content_id, [0.0, 0, set()])
            cur[0] = max(cur[0], note.last_access)
            cur[1] += note.added_bytes
            cur[2] |= set(note.rendered)
        if not merged:
            return 0
        ordered = sorted(merged)  # one lock order for every writer: no deadlock between two flushes

        def work(run):
            again = 0
            rendered = [cid for cid in ordered if merged[cid][2]]
            for part in chunks(rendered):
                rows, _ = run(f"SELECT content_id, evicted FROM content_usage WHERE content_id IN ({marks(part)})"
                              f" AND evicted <> '' ORDER BY content_id{self.LOCK}", tuple(part))
                for cid, evicted in rows:
                    names = set(evicted.split())
                    back = names & merged[cid][2]
                    if back:
                        again += len(back)
                        run("UPDATE content_usage SET evicted = ? WHERE content_id = ?",
                            (" ".join(sorted(names - back)), cid))
            for part in chunks(ordered):
                values = [v for cid in part for v in (cid, float(merged[cid][0]), int(merged[cid][1]))]
                run("INSERT INTO content_usage (content_id, last_access, variant_bytes) VALUES "
                    + ", ".join(["(?, ?, ?)"] * len(part))
                    + " ON CONFLICT (content_id) DO UPDATE SET"
                    " last_access = CASE WHEN excluded.last_access > content_usage.last_access"
                    " THEN excluded.last_access ELSE content_usage.last_access END,"
                    " variant_bytes = content_usage.variant_bytes + excluded.variant_bytes", tuple(values))
            return again

        return self._transact(work)

    def usage_total(self) -> int:
        rows, _ = self._exec("SELECT COALESCE(SUM(variant_bytes), 0) FROM content_usage WHERE variant_bytes > 0")
        return int(rows[0][0])

    def coldest(self, limit: int, before: float, after: tuple[float, str] = (-1.0, "")) -> list[Usage]:
        """Contents with lazy variants stored, least recently accessed first, last access < `before`,
        after the (last_access, content_id) position `after` (to page through)."""
        rows, _ = self._exec(
            f"SELECT {USAGE_COLUMNS} FROM content_usage WHERE variant_bytes > 0 AND last_access < ?"
            " AND (last_access > ? OR (last_access = ? AND content_id > ?))"
            " ORDER BY last_access, content_id LIMIT ?",
            (float(before), float(after[0]), float(after[0]), after[1], limit))
        return [_usage(row) for row in rows]

    def get_usage(self, content_id: str) -> Usage | None:
        rows, _ = self._exec(f"SELECT {USAGE_COLUMNS} FROM content_usage WHERE content_id = ?", (content_id,))
        return _usage(rows[0]) if rows else None

    def mark_evicting(self, content_id: str, names, now: float) -> None:
        """Before eviction deletes them: remember the names (their next render counts as a re-render)."""
        def work(run):
            rows, _ = run(f"SELECT evicted FROM content_usage WHERE content_id = ?{self.LOCK}", (content_id,))
            known = set(rows[0][0].split()) if rows else set()
            joined = " ".join(sorted(known | set(names)))
            if rows:
                run("UPDATE content_usage SET evicted = ?, evicted_at = ? WHERE content_id = ?",
                    (joined, float(now), content_id))
            else:
                run("INSERT INTO content_usage (content_id, last_access, variant_bytes, evicted, evicted_at)"
                    " VALUES (?, ?, 0, ?, ?)", (content_id, float(now), joined, float(now)))

        self._transact(work)

    def mark_evicted(self, content_id: str, remaining: int = 0) -> None:
        """Its variants are deleted: `remaining` bytes of them (too fresh to take) are left."""
        self._exec("UPDATE content_usage SET variant_bytes = ? WHERE content_id = ?", (int(remaining), content_id))

    def set_usage_bytes(self, measured) -> None:
        """The store walk's exact figures: {content_id: (variant bytes, newest variant's write time)}.
        A content not seen before gets that write time as its last access."""
        items = sorted(measured.items())
        for start in range(0, len(items), 500):
            part = items[start: start + 500]
            values = [v for cid, (size, seen) in part for v in (cid, float(seen), int(size))]
            self._exec("INSERT INTO content_usage (content_id, last_access, variant_bytes) VALUES "
                       + ", ".join(["(?, ?, ?)"] * len(part))
                       + " ON CONFLICT (content_id) DO UPDATE SET variant_bytes = excluded.variant_bytes",
                       tuple(values))

    def prune_usage(self) -> int:
        """Forget contents that are gone (no content row, no record using the id as its own)."""
        _, count = self._exec(
            "DELETE FROM content_usage WHERE NOT EXISTS (SELECT 1 FROM contents WHERE contents.id ="
            " content_usage.content_id) AND NOT EXISTS (SELECT 1 FROM images WHERE images.id ="
            " content_usage.content_id AND images.content_id IN ('', images.id))")
        return max(count, 0)

    def dedup_summary(self) -> DedupSummary:
        records, _ = self._exec("SELECT count(*) FROM images WHERE state = 'ready'")
        contents, _ = self._exec("SELECT count(*), COALESCE(SUM(bytes), 0) FROM contents WHERE state = 'live'")
        exact, _ = self._exec(
            "SELECT count(*), COALESCE(SUM(i.bytes), 0) FROM images i JOIN contents c ON c.id = i.content_id"
            " WHERE i.id <> c.id AND i.sha256 = c.sha256")
        near, _ = self._exec(
            "SELECT count(*), count(DISTINCT i.source_key) FROM images i JOIN contents c ON c.id = i.content_id"
            " WHERE i.sha256 <> c.sha256")
        return DedupSummary(records=int(records[0][0]), contents=int(contents[0][0]),
                            content_bytes=int(contents[0][1]), exact_aliases=int(exact[0][0]),
                            exact_bytes=int(exact[0][1]), collapsed_records=int(near[0][0]),
                            collapsed_contents=int(near[0][1]))


SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS content_usage (
    content_id TEXT PRIMARY KEY,
    last_access REAL NOT NULL,
    variant_bytes INTEGER NOT NULL DEFAULT 0,
    evicted TEXT NOT NULL DEFAULT '',
    evicted_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS content_usage_lru ON content_usage (last_access, content_id) WHERE variant_bytes > 0;
"""
POSTGRES_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS content_usage (
        content_id TEXT PRIMARY KEY,
        last_access DOUBLE PRECISION NOT NULL,
        variant_bytes BIGINT NOT NULL DEFAULT 0,
        evicted TEXT NOT NULL DEFAULT '',
        evicted_at DOUBLE PRECISION NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS content_usage_lru ON content_usage (last_access, content_id) WHERE variant_bytes > 0",
)
