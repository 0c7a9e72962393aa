"""What storage costs: by class and tier, per month, per million images (`imagehost cost`).

    storage     every (class, tier) of the store walk at its tier's price, billed as
                the provider bills: small objects raised to the tier's minimum size,
                per-object index overhead for the archive tiers
    requests    delivery's store requests by operation and class (metrics), scaled to
                a month; a class's requests are spread over its tiers as its objects
                are, and reads pay their tier's retrieval fee on the class's mean size
    dedup       what exact aliases and collapsed near-duplicates did not store: their
                uploads' bytes (exact), and per content the mean bytes of everything
                derived from a source (thumbnails, variants, master, intermediate)
    one-time    per million images: the PUTs that store them, the lifecycle's transitions

The monthly figure per million images is (storage + requests) / ready images × 10^6,
against the design target of $50.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from origin.lifecycle.inventory import Inventory, Tally
from origin.lifecycle.prices import GB, PriceTable
from origin.tiers import TIERS

TARGET_PER_MILLION = 50.0
DAYS_PER_MONTH = 30.4375
DERIVED = ("master", "intermediate", "thumbnail", "variant")
CLASS_ORDER = ("source", "master", "intermediate", "thumbnail", "variant", "kept_source", "record", "upload",
               "quarantine")


@dataclass
class Requests:
    """Requests per month by (op, class), and how long the figures behind them were counted."""

    per_month: dict = field(default_factory=dict)  # (op, class) → count per month
    window_seconds: float = 0.0  # 0: not measured (given as they are)
    counted: dict = field(default_factory=dict)  # (op, class) → as counted in the window
    # (op, class, tier) → [requests, bytes] per month, where the tier of every read is known (the
    # cost benchmark): priced exactly instead of spread over the class's tiers
    by_tier: dict = field(default_factory=dict)


def storage_cost(tally: Tally, tier: str, prices: PriceTable) -> float:
    price = prices.tier(tier)
    billable = tally.billable(price.min_bytes, price.overhead)
    standard = prices.tier("STANDARD").storage * tally.objects * price.overhead_standard / GB
    return billable / GB * price.storage + standard


def _shares(inventory: Inventory, cls: str) -> list[tuple[str, float, float]]:
    """(tier, share of the class's objects, mean object size) for every tier the class is in."""
    tallies = [(t, inventory.tallies[(c, t)]) for (c, t) in inventory.tallies if c == cls]
    count = sum(t.objects for _, t in tallies)
    if not count:
        return [("STANDARD", 1.0, 0.0)]
    return [(tier, t.objects / count, t.bytes / t.objects if t.objects else 0.0) for tier, t in tallies if t.objects]


def request_cost(op: str, cls: str, count: float, inventory: Inventory, prices: PriceTable,
                 placed: dict | None = None) -> float:
    if op == "delete":
        return 0.0
    if op == "list":
        return count / 1000 * prices.list
    if op == "put":  # a write lands in the tier its class is placed in (STANDARD unless a 0-day rule)
        return count / 1000 * prices.tier((placed or {}).get(cls, "STANDARD")).put
    total = 0.0
    for tier, share, mean in _shares(inventory, cls):  # get, head
        price = prices.tier(tier)
        n = count * share
        total += n / 1000 * price.get
        if op == "get":
            total += n * mean / GB * price.retrieval
    return total


def exact_cost(op: str, tier: str, count: float, size: float, prices: PriceTable) -> float:
    price = prices.tier(tier)
    if op == "list":
        return count / 1000 * prices.list
    if op == "put":
        return count / 1000 * price.put
    if op == "delete":
        return 0.0
    return count / 1000 * price.get + (size / GB * price.retrieval if op == "get" else 0.0)


def report(inventory: Inventory, prices: PriceTable, requests: Requests, summary, placed: dict | None = None,
           tagged=frozenset()) -> dict:
    """`placed`: {object class: tier} written there at once (Rules.placement), the rest start in STANDARD;
    `tagged`: the object classes that carry a lifecycle tag (billed per tag and month)."""
    placed = placed or {}
    storage_rows, by_class, by_tier = [], {}, {}
    storage_total = 0.0
    for (cls, tier), tally in sorted(inventory.tallies.items(),
                                     key=lambda kv: (CLASS_ORDER.index(kv[0][0]) if kv[0][0] in CLASS_ORDER else 99,
                                                     TIERS.index(kv[0][1]))):
        if not tally.objects:
            continue
        usd = storage_cost(tally, tier, prices)
        price = prices.tier(tier)
        storage_rows.append({"class": cls, "tier": tier, "objects": tally.objects, "bytes": tally.bytes,
                             "billable_bytes": tally.billable(price.min_bytes, price.overhead),
                             "monthly_usd": round(usd, 6)})
        storage_total += usd
        by_class[cls] = by_class.get(cls, 0.0) + usd
        by_tier[tier] = by_tier.get(tier, 0.0) + usd
    tags = sum(inventory.total(cls=c).objects for c in tagged)
    if tags and prices.tag:
        usd = tags * prices.tag
        storage_rows.append({"class": "tags", "tier": "-", "objects": tags, "bytes": 0, "billable_bytes": 0,
                             "monthly_usd": round(usd, 6)})
        storage_total += usd
        by_class["tags"] = by_class.get("tags", 0.0) + usd
    request_rows, request_total = [], 0.0
    exact: dict = {}
    for (op, cls, tier), (count, size) in requests.by_tier.items():
        entry = exact.setdefault((op, cls), [0.0, 0.0])
        entry[0] += count
        entry[1] += exact_cost(op, tier, count, size, prices)
    for op, cls in sorted(set(requests.per_month) | set(requests.counted) | set(exact)):
        count = requests.per_month.get((op, cls), exact.get((op, cls), [0.0])[0])
        usd = exact[(op, cls)][1] if (op, cls) in exact else request_cost(op, cls, count, inventory, prices, placed)
        request_rows.append({"op": op, "class": cls, "counted": round(requests.counted.get((op, cls), count)),
                             "per_month": round(count), "monthly_usd": round(usd, 6)})
        request_total += usd
        by_class[cls] = by_class.get(cls, 0.0) + usd
    images = summary.records
    scale = 1e6 / images if images else 0.0
    total = storage_total + request_total
    derived = inventory.total()
    derived_bytes = sum(inventory.total(cls=c).bytes for c in DERIVED)
    per_content = derived_bytes / summary.contents if summary.contents else 0.0
    exact_saved = summary.exact_bytes + summary.exact_aliases * per_content
    near_saved = summary.collapsed_contents * per_content
    one_time = 0.0
    transitions = 0.0
    for (cls, tier), tally in inventory.tallies.items():
        written = placed.get(cls, "STANDARD")
        one_time += tally.objects / 1000 * prices.tier(written).put
        if tier != written:  # it got there by a lifecycle transition
            transitions += tally.objects / 1000 * prices.tier(tier).transition
    return {
        "prices": prices.name,
        "price_note": prices.note,
        "images": images,
        "contents": summary.contents,
        "objects": derived.objects,
        "bytes": derived.bytes,
        "storage": storage_rows,
        "requests": {"window_seconds": round(requests.window_seconds, 1), "rows": request_rows},
        "dedup": {
            "exact_aliases": summary.exact_aliases,
            "collapsed_records": summary.collapsed_records,
            "collapsed_contents": summary.collapsed_contents,
            "exact_bytes_saved": round(exact_saved),
            "perceptual_bytes_saved": round(near_saved),
        },
        "monthly_usd": {"storage": round(storage_total, 6), "requests": round(request_total, 6),
                        "total": round(total, 6)},
        "per_million_images": {
            "monthly_usd": round(total * scale, 2),
            "target_usd": TARGET_PER_MILLION,
            "by_class": {k: round(v * scale, 2) for k, v in sorted(by_class.items(), key=lambda kv: -kv[1])},
            "by_tier": {k: round(v * scale, 2) for k, v in sorted(by_tier.items(), key=lambda kv: -kv[1])},
            "one_time_usd": {"puts": round(one_time * scale, 2), "transitions": round(transitions * scale, 2)},
        },
    }


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def table(out: dict) -> str:
    """The report for a person."""
    lines = [f"prices: {out['prices']} — {out['price_note']}",
             f"images: {out['images']:,} ready, {out['contents']:,} stored contents, {out['objects']:,} objects, "
             f"{_size(out['bytes'])}", "",
             f"{'class':<13} {'tier':<13} {'objects':>9} {'bytes':>12} {'billed as':>12} {'$/month':>11}"]
    for row in out["storage"]:
        lines.append(f"{row['class']:<13} {row['tier']:<13} {row['objects']:>9,} {_size(row['bytes']):>12} "
                     f"{_size(row['billable_bytes']):>12} {row['monthly_usd']:>11.6f}")
    lines.append(f"{'storage':<13} {'':<13} {'':>9} {'':>12} {'':>12} {out['monthly_usd']['storage']:>11.6f}")
    req = out["requests"]
    seconds = req["window_seconds"]
    if not seconds:
        window = "per month"
    elif any(row["per_month"] for row in req["rows"]) or not req["rows"]:
        window = f"counted over {seconds / 3600:.2f} h, scaled to a month"
    else:
        window = f"counted over {seconds:.0f} s: too short to scale to a month"
    lines += ["", f"requests ({window}):",
              f"  {'op':<7} {'class':<13} {'counted':>10} {'per month':>12} {'$/month':>11}"]
    for row in req["rows"]:
        lines.append(f"  {row['op']:<7} {row['class']:<13} {row['counted']:>10,} {row['per_month']:>12,} "
                     f"{row['monthly_usd']:>11.6f}")
    lines.append(f"  {'total':<21} {'':>10} {'':>12} {out['monthly_usd']['requests']:>11.6f}")
    d = out["dedup"]
    lines += ["", f"dedup: {d['exact_aliases']:,} exact aliases ({_size(d['exact_bytes_saved'])} not stored), "
                  f"{d['collapsed_contents']:,} near-duplicate contents collapsed "
                  f"({_size(d['perceptual_bytes_saved'])} of derived objects not stored)"]
    pm = out["per_million_images"]
    verdict = "within" if pm["monthly_usd"] <= pm["target_usd"] else "over"
    lines += ["", f"per million images: ${pm['monthly_usd']:,.2f} a month ({verdict} the ${pm['target_usd']:.0f} "
                  "target)",
              "  by class: " + ", ".join(f"{k} ${v:,.2f}" for k, v in pm["by_class"].items()),
              "  by tier:  " + ", ".join(f"{k} ${v:,.2f}" for k, v in pm["by_tier"].items()),
              f"  once, to store them: ${pm['one_time_usd']['puts']:,.2f} in PUTs, "
              f"${pm['one_time_usd']['transitions']:,.2f} in lifecycle transitions"]
    return "\n".join(lines)
