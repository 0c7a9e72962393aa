"""Catalog reads for operators, shared by both adapters (through their `_exec`, `?` placeholders).

    find_sha256(owner, sha256)             a record of this owner with these bytes (bulk ingest resumes by it)
    search(owner, state, limit, before)    records by owner and/or state, newest first (imagehost images)
    state_counts()                         per state: how many, and the oldest one's created_at (metrics)
    stored_bytes()                         bytes of live contents' sources (metrics)
"""
from __future__ import annotations

from datetime import datetime, timezone

from origin.ports.catalog import COLUMNS, ImageRecord, check_state

SELECT = f"SELECT {', '.join(COLUMNS)}, seq FROM images"


def _instant(value) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class QueriesMixin:
    def find_sha256(self, owner: str, sha256: str) -> ImageRecord | None:
        rows, _ = self._exec(f"{SELECT} WHERE sha256 = ? AND owner = ? ORDER BY seq LIMIT 1", (sha256, owner))
        return self._to_record(rows[0]) if rows else None

    def search(self, owner: str | None = None, state: str | None = None, limit: int = 100,
               before_seq: int | None = None) -> list[ImageRecord]:
        where, params = ["seq < ?"], [before_seq if before_seq is not None else 2**62]
        if owner is not None:
            where.append("owner = ?")
            params.append(owner)
        if state is not None:
            where.append("state = ?")
            params.append(check_state(state))
        rows, _ = self._exec(f"{SELECT} WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?", (*params, limit))
        return [self._to_record(row) for row in rows]

    def stored_bytes(self) -> int:
        """Bytes of the sources of live contents (what the store holds for certain; variants come and go)."""
        rows, _ = self._exec("SELECT COALESCE(SUM(bytes), 0) FROM contents WHERE state = 'live'")
        return int(rows[0][0])

    def state_counts(self) -> dict[str, tuple[int, datetime | None]]:
        rows, _ = self._exec("SELECT state, COUNT(*), MIN(created_at) FROM images GROUP BY state")
        return {state: (int(count), _instant(oldest)) for state, count, oldest in rows}
