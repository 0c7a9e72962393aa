"""Perceptual-hash index port: near-duplicate lookup by Hamming distance.

A hash is imagehash's 64-bit pHash as an unsigned Python int (0 <= h < 2**64);
`phash_int()` converts an image. Two images are near-duplicates when the Hamming
distance of their hashes, popcount(a XOR b), is at most a threshold (6 by default).

Adapters: `hash_index_sqlite.SqliteHashIndex` (embedded default) and
`hash_index_postgres.PostgresHashIndex`. Both raise
`origin.errors.CatalogUnavailable` when the database cannot be reached and
`DistanceUnsupported` for a query wider than the index was built to guarantee.

Method: multi-index hashing (Norouzi, Punjani, Fleet, "Fast Search in Hamming
Space with Multi-Index Hashing", CVPR 2012), generalized form
-------------------------------------------------------------------------------
The 64 bits are split into m = 3 disjoint bands of BAND_WIDTHS = (22, 21, 21)
bits. Each row stores the full hash plus one integer column per band, and each
band column has its own (btree) index. A lookup for query q within distance r
probes every band value inside a small Hamming ball around q's band value, as
exact-match index lookups, takes the union of the rows found ("candidates") and
keeps those whose full distance popcount(h XOR q) is <= r.

Guarantee (recall 1.0 for every r <= max_distance). Write r = s*m + a with
0 <= a < m. Probe radius s on the first a+1 bands and s-1 on the other m-a-1
(radius -1: that band is not probed). Claim: every stored h with d(h, q) <= r
has some band k whose band distance d_k(h, q) is within that band's radius.
Proof (pigeonhole): the bands are disjoint, so d(h, q) = d_1 + ... + d_m.
If the claim failed, d_k >= s+1 on each of the first a+1 bands and d_k >= s on
the others, so d(h, q) >= (a+1)(s+1) + (m-a-1)s = ms + a + 1 = r + 1 > r,
a contradiction. For that band k, h's band value is one of the probed values
(the ball enumerates *every* value within the radius), so the exact-match lookup
on band k returns h's row. Verification is exact, so precision is 1.0 too: the
answer is exactly {h : d(h, q) <= r}, the same set a linear scan would give.
The plain pigeonhole variant (m >= r+1 bands, radius 0 each) is the case s = 0.

For the default threshold r = 6 and m = 3: s = 2, a = 0, radii (2, 1, 1):
1 + 22 + C(22,2) = 254 probes on the 22-bit band and 1 + 21 = 22 on each
21-bit band: 298 exact lookups. On uniform hashes a band value of w bits is
shared by N/2**w rows, so the expected candidate count is
254*N/2**22 + 2*22*N/2**21, about 82 rows at N = 1,000,000 (820 at 10M).

Why 3 bands of ~21 bits. Measured on the local PostgreSQL 15 (shared_buffers
128 MB), 1M uniformly random hashes, r = 6, the same UNION ALL statement per
layout, on 2 CPU cores shared with other jobs (load average 4-8):

    layout               probes  candidates@1M  statement (server)   client p50
    8 x 8 bits, r=0          7      ~27,000      52-73 ms             16-73 ms
    4 x 16, radii 1,1,1,0   52         ~790      1 ms hot, 18 ms *    1.3-20 ms
    3 x 22/21/21, 2,1,1    298          ~82      0.56 ms (p99 0.9)    0.8-1.1 ms  <- chosen
    2 x 32, radii 3,2    6,018           ~1      probe-bound          15-19 ms

    * 18 ms once the 81 MB heap no longer sits in shared_buffers: every
      candidate is a random heap page read.

Fewer, wider bands trade candidates (heap rows fetched and verified, growing
linearly with N and costly as soon as the table outgrows the buffer cache) for
probes (index descents, ~3 buffer hits each, independent of N). With 8-bit
bands every band bucket holds N/256 hashes: a linear scan in slices. With
32-bit bands the ~6,000 index descents dominate. Three bands keep both small
(~300 descents + ~80 heap rows at 1M), and the candidate count stays in the
hundreds up to ~10M hashes.

The layout is fixed by the schema (changing it means rebuilding the index).
`max_distance`, the threshold the index guarantees, is a constructor argument
(default 6, at most MAX_SUPPORTED_DISTANCE = 10): probes grow fast with r
(r=7: 508, r=8: 718, r=9: 2,258, r=10: 3,588), so a query asking for more than
the configured guarantee raises `DistanceUnsupported` instead of silently
becoming slow. Skewed real-world hash distributions (e.g. many near-blank
images) make some buckets larger than N/2**w; correctness is unaffected.

Hashes are unsigned in Python; the databases store them as signed 64-bit
integers (two's complement, `to_signed`/`to_unsigned`), so XOR and popcount on
the stored value give the same distance.
"""
from __future__ import annotations

from functools import lru_cache
from itertools import combinations
from typing import Iterable, Protocol

HASH_BITS = 64
MASK64 = (1 << HASH_BITS) - 1
BAND_WIDTHS = (22, 21, 21)  # most significant band first; sums to 64
BAND_SHIFTS = tuple(HASH_BITS - sum(BAND_WIDTHS[: i + 1]) for i in range(len(BAND_WIDTHS)))
BANDS = len(BAND_WIDTHS)
DEFAULT_MAX_DISTANCE = 6
MAX_SUPPORTED_DISTANCE = 10

assert sum(BAND_WIDTHS) == HASH_BITS


class DistanceUnsupported(ValueError):
    """A lookup asked for a wider distance than the index guarantees."""


class HashIndex(Protocol):
    max_distance: int

    def add(self, content_id: str, phash: int) -> None:
        """Index `content_id` under `phash` (replaces its previous hash)."""

    def add_many(self, items: Iterable[tuple[str, int]]) -> int:
        """Bulk `add` (backfills, benchmarks); returns the number of items."""

    def remove(self, content_id: str) -> None:
        """Forget `content_id`; unknown ids are ignored."""

    def near(self, phash: int, max_distance: int) -> list[tuple[str, int]]:
        """Every indexed (content id, distance) with distance <= max_distance,
        sorted by distance then content id. Raises DistanceUnsupported when
        max_distance exceeds the index's guarantee."""

    def count(self) -> int: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


def check_hash(phash: int) -> int:
    if isinstance(phash, bool) or not isinstance(phash, int) or not 0 <= phash <= MASK64:
        raise ValueError(f"a pHash must be an unsigned 64-bit int, got {phash!r}")
    return phash


def check_max_distance(max_distance: int) -> int:
    """Validate an index's guaranteed threshold (constructor argument)."""
    if isinstance(max_distance, bool) or not isinstance(max_distance, int):
        raise ValueError(f"max_distance must be an int, got {max_distance!r}")
    if not 0 <= max_distance <= MAX_SUPPORTED_DISTANCE:
        raise ValueError(
            f"max_distance must be between 0 and {MAX_SUPPORTED_DISTANCE}, got {max_distance} "
            f"(beyond that a lookup probes thousands of band values per band)"
        )
    return max_distance


def check_query(distance: int, guaranteed: int) -> int:
    """Validate one lookup's distance against the index's guarantee."""
    if isinstance(distance, bool) or not isinstance(distance, int) or distance < 0:
        raise ValueError(f"max_distance must be a non-negative int, got {distance!r}")
    if distance > guaranteed:
        raise DistanceUnsupported(
            f"lookup within distance {distance} asked of an index that guarantees full recall "
            f"only up to {guaranteed}; construct it with max_distance >= {distance} "
            f"(at most {MAX_SUPPORTED_DISTANCE})"
        )
    return distance


def to_signed(phash: int) -> int:
    """Unsigned 64-bit → the signed BIGINT/INTEGER the databases store."""
    return phash - (1 << HASH_BITS) if phash >> (HASH_BITS - 1) else phash


def to_unsigned(value: int) -> int:
    return value & MASK64


def hamming(a: int, b: int) -> int:
    return ((a ^ b) & MASK64).bit_count()


def bands(phash: int) -> tuple[int, ...]:
    """The band values of an unsigned hash, most significant band first."""
    return tuple((phash >> shift) & ((1 << width) - 1) for shift, width in zip(BAND_SHIFTS, BAND_WIDTHS))


def radii(distance: int) -> tuple[int, ...]:
    """Per-band probe radius for a lookup within `distance` (-1: band not probed)."""
    s, a = divmod(distance, BANDS)
    return tuple(s if k <= a else s - 1 for k in range(BANDS))


@lru_cache(maxsize=None)
def _ball_masks(width: int, radius: int) -> tuple[int, ...]:
    """XOR masks of every value within `radius` bits of a `width`-bit value (0 first)."""
    if radius < 0:
        return ()
    masks = [0]
    for flips in range(1, radius + 1):
        for positions in combinations(range(width), flips):
            mask = 0
            for bit in positions:
                mask |= 1 << bit
            masks.append(mask)
    return tuple(masks)


def probes(phash: int, distance: int) -> list[list[int]]:
    """For each band, the band values to look up so that every hash within
    `distance` of `phash` matches at least one of them (see the module docstring)."""
    return [
        [value ^ mask for mask in _ball_masks(width, radius)]
        for value, width, radius in zip(bands(phash), BAND_WIDTHS, radii(distance))
    ]


def probe_count(distance: int) -> int:
    return sum(len(_ball_masks(w, r)) for w, r in zip(BAND_WIDTHS, radii(distance)))


def expected_candidates(distance: int, n: int) -> float:
    """Candidate rows a lookup reads on n uniformly random hashes (before verification)."""
    return sum(len(_ball_masks(w, r)) * n / (1 << w) for w, r in zip(BAND_WIDTHS, radii(distance)))


def phash_int(image) -> int:
    """imagehash's 64-bit pHash of a PIL image, as the unsigned int this port stores."""
    import imagehash

    return int(str(imagehash.phash(image)), 16)
