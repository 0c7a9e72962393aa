"""Dedup benchmark: perceptual-hash lookups at scale, latency and recall, in one run.

    .venv/bin/python loadtest/bench_dedup.py [--pg-count N] [--sqlite-count N] [--queries N]

For each adapter of the hash-index port (origin/ports/hash_index*.py):

    data     N hashes: uniformly random 64-bit values, plus, for each query, a
             planted neighbour at distance 1..T (T = --threshold, default 6;
             query i gets distance 1 + i % T) and a planted decoy at T+1
    load     add_many(): COPY on PostgreSQL (into a schema of its own, dropped
             at the end), one transaction on SQLite (a temp file, removed)
    lookup   near(q, T) for every query, one client thread, after a short warm-up
             (opens the pool, prepares the statement); the latency includes the
             round trip and the client-side probe enumeration
    truth    a brute-force scan of the same hashes in memory (numpy XOR and
             bitwise_count over the whole array) for every query
    server   PostgreSQL only: the lookup statement's own execution time, from
             EXPLAIN (ANALYZE, TIMING OFF) on every 4th query, after the timed
             run: what the database spends, without the client's scheduling

Targets at the default threshold: p99 < 5 ms; recall 1.0 (every hash within T
found), exact answers (nothing beyond T, distances right). PostgreSQL comes from
IMAGEHOST_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test)
or --pg-url. The machine may be shared: the load average is printed with the
figures. Exit status 0 when every target is met, 1 otherwise.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from origin.ports.hash_index import (  # noqa: E402
    DEFAULT_MAX_DISTANCE,
    expected_candidates,
    probe_count,
    probes,
    to_signed,
)
from origin.ports.hash_index_postgres import NEAR, PostgresHashIndex  # noqa: E402
from origin.ports.hash_index_sqlite import SqliteHashIndex  # noqa: E402

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
P99_TARGET_MS = 5.0
WARMUP = 50


@dataclass
class Dataset:
    hashes: np.ndarray  # uint64, position i is content id ID_FORMAT.format(i)
    queries: list[int]
    planted: list[tuple[int, int]]  # (row of the planted neighbour, its distance) per query
    decoys: list[int]  # row of the decoy at T+1 per query
    warmup: list[int]

    def ids(self):
        return ((content_id(i), int(h)) for i, h in enumerate(self.hashes))


def content_id(row: int) -> str:
    return f"img{row:08d}"


def flip(value: int, bits: np.ndarray) -> int:
    for bit in bits:
        value ^= 1 << int(bit)
    return value


def make_dataset(count: int, queries: int, threshold: int, seed: int) -> Dataset:
    if count < 2 * queries:
        raise SystemExit(f"bench: need at least 2 x --queries rows ({2 * queries}), got {count}")
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, size=count, dtype=np.uint64, endpoint=False)
    query_hashes = rng.integers(0, 2**64, size=queries + WARMUP, dtype=np.uint64)
    planted, decoys, qs = [], [], []
    rows = rng.permutation(count)[: 2 * queries]  # where the planted hashes go, spread out
    for i in range(queries):
        q = int(query_hashes[i])
        distance = 1 + i % threshold
        near_row, decoy_row = int(rows[2 * i]), int(rows[2 * i + 1])
        hashes[near_row] = flip(q, rng.choice(64, size=distance, replace=False))
        hashes[decoy_row] = flip(q, rng.choice(64, size=threshold + 1, replace=False))
        qs.append(q)
        planted.append((near_row, distance))
        decoys.append(decoy_row)
    return Dataset(hashes, qs, planted, decoys, [int(h) for h in query_hashes[queries:]])


@dataclass
class Result:
    backend: str
    rows: int
    load_s: float
    latencies_ms: list[float] = field(default_factory=list)
    brute_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    truth_total: int = 0
    found_true: int = 0
    wrong: int = 0  # returned beyond the threshold, or with a wrong distance
    planted_found: int = 0
    decoys_returned: int = 0
    load_avg: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def pct(self, q: float) -> float:
        return float(np.percentile(np.array(self.latencies_ms), q))

    @property
    def recall(self) -> float:
        return self.found_true / self.truth_total if self.truth_total else 1.0


def measure(index, data: Dataset, threshold: int, backend: str, load_s: float) -> Result:
    result = Result(backend, len(data.hashes), load_s)
    for q in data.warmup:
        index.near(q, threshold)
    answers = []
    for q in data.queries:
        started = time.perf_counter()
        found = index.near(q, threshold)
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
        answers.append(found)
    result.load_avg = os.getloadavg()
    for i, (q, found) in enumerate(zip(data.queries, answers)):
        started = time.perf_counter()
        distances = np.bitwise_count(data.hashes ^ np.uint64(q))
        truth_rows = np.flatnonzero(distances <= threshold)
        result.brute_ms.append((time.perf_counter() - started) * 1000)
        truth = {content_id(int(r)): int(distances[r]) for r in truth_rows}
        got = dict(found)
        result.truth_total += len(truth)
        result.found_true += sum(1 for cid, d in truth.items() if got.get(cid) == d)
        result.wrong += sum(1 for cid, d in got.items() if truth.get(cid) != d)
        near_row, _ = data.planted[i]
        result.planted_found += content_id(near_row) in got
        result.decoys_returned += content_id(data.decoys[i]) in got
    return result


def bench_postgres(base_url: str, data: Dataset, threshold: int) -> Result:
    schema = f"bench_dedup_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base_url, connect_timeout=5, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    url = base_url + ("&" if "?" in base_url else "?") + f"options=-csearch_path%3D{schema}"
    index = PostgresHashIndex(url, max_distance=threshold)
    try:
        started = time.perf_counter()
        index.add_many(data.ids())
        load_s = time.perf_counter() - started
        assert index.count() == len(data.hashes)
        print(f"postgresql: loaded {len(data.hashes):,} hashes in {load_s:.1f} s (COPY + upsert + ANALYZE)",
              flush=True)
        result = measure(index, data, threshold, "PostgreSQL", load_s)
        result.server_ms = server_times(url, data.queries[::4], threshold)
        return result
    finally:
        index.close()
        with psycopg.connect(base_url, connect_timeout=5, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def server_times(url: str, queries: list[int], threshold: int) -> list[float]:
    """The adapter's lookup statement, with its parameters, under EXPLAIN ANALYZE."""
    times = []
    with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
        for q in queries:
            params = {"q": to_signed(q), "d": threshold}
            params.update((f"p{k}", values) for k, values in enumerate(probes(q, threshold)))
            plan = conn.execute("EXPLAIN (ANALYZE, TIMING OFF) " + NEAR, params).fetchall()
            times.append(float(re.search(r"Execution Time: ([\d.]+)", plan[-1][0]).group(1)))
    return times


def bench_sqlite(tmp: Path, data: Dataset, threshold: int) -> Result:
    index = SqliteHashIndex(tmp / "hash_index.sqlite3", max_distance=threshold)
    try:
        started = time.perf_counter()
        index.add_many(data.ids())
        load_s = time.perf_counter() - started
        assert index.count() == len(data.hashes)
        print(f"sqlite: loaded {len(data.hashes):,} hashes in {load_s:.1f} s", flush=True)
        return measure(index, data, threshold, "SQLite", load_s)
    finally:
        index.close()


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(results: list[Result], threshold: int, queries: int) -> bool:
    header = ("backend", "hashes", "load", "p50", "p99", "max", "server p50/p99", "brute p50", "recall", "wrong",
              "planted", "decoys", "p99 < 5 ms", "recall 1.0")
    rows, ok = [], True
    for r in results:
        fast = r.pct(99) < P99_TARGET_MS
        exact = r.recall == 1.0 and r.wrong == 0 and r.planted_found == queries and r.decoys_returned == 0
        ok &= fast and exact
        rows.append((r.backend, f"{r.rows:,}", f"{r.load_s:.1f} s", f"{r.pct(50):.2f} ms", f"{r.pct(99):.2f} ms",
                     f"{max(r.latencies_ms):.1f} ms",
                     f"{np.percentile(r.server_ms, 50):.2f} / {np.percentile(r.server_ms, 99):.2f} ms"
                     if r.server_ms else "-",
                     f"{float(np.median(r.brute_ms)):.2f} ms",
                     f"{r.recall:.4f} ({r.found_true}/{r.truth_total})", str(r.wrong),
                     f"{r.planted_found}/{queries}", f"{r.decoys_returned}/{queries}",
                     verdict(fast), verdict(exact)))
    widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(len(header))]
    print()
    print(f"near(q, {threshold}) over {queries:,} queries; {probe_count(threshold)} band probes per lookup")
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    for r in results:
        print(f"  {r.backend}: expected candidates per lookup on uniform data "
              f"{expected_candidates(threshold, r.rows):.0f}; load average after the lookups "
              + " ".join(f"{x:.2f}" for x in r.load_avg) + f" ({os.cpu_count()} CPUs)")
    print("  p50/p99/max: near() as the client sees it; server: the statement's execution time in PostgreSQL")
    print("  brute p50: the numpy linear scan used as ground truth, per query (in memory, no database)")
    return ok


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pg-count", type=int, default=1_000_000, help="hashes in PostgreSQL (0: skip)")
    ap.add_argument("--sqlite-count", type=int, default=100_000, help="hashes in SQLite (0: skip)")
    ap.add_argument("--queries", type=int, default=1_000, help="timed lookups per backend (default 1,000)")
    ap.add_argument("--threshold", type=int, default=DEFAULT_MAX_DISTANCE, help="Hamming threshold (default 6)")
    ap.add_argument("--pg-url", default=os.environ.get("IMAGEHOST_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    ap.add_argument("--seed", type=int, default=20240506)
    args = ap.parse_args(argv)
    if args.queries < 1 or args.threshold < 1:
        ap.error("--queries and --threshold must be positive")
    if args.queries < 1000:
        print(f"bench: note: {args.queries} queries (< 1,000): the p99 is rough", file=sys.stderr)

    signal.signal(signal.SIGTERM, _interrupt)  # like Ctrl-C: unwind through the finally blocks
    tmp = Path(tempfile.mkdtemp(prefix="imagehost-bench-dedup-"))
    results = []
    try:
        print(f"{os.cpu_count()} CPUs; load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        if args.pg_count:
            data = make_dataset(args.pg_count, args.queries, args.threshold, args.seed)
            results.append(bench_postgres(args.pg_url, data, args.threshold))
            del data
        if args.sqlite_count:
            data = make_dataset(args.sqlite_count, args.queries, args.threshold, args.seed + 1)
            results.append(bench_sqlite(tmp, data, args.threshold))
        if not results:
            ap.error("nothing to do: --pg-count and --sqlite-count are both 0")
        return 0 if table(results, args.threshold, args.queries) else 1
    except KeyboardInterrupt:
        print("\nbench: interrupted", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
