"""Price tables for `imagehost cost` and the cost benchmark (IMAGEHOST_PRICES).

Tiers carry S3's storage-class names; another provider's table maps its own
classes onto them. Figures are public list prices (USD) as published in 2025,
first pricing band, no free allowance, no egress (the CDN serves the bytes):
check your region and contract, and override with a JSON file:

    {"base": "aws", "note": "eu-west-1", "tiers": {"STANDARD": {"storage": 0.023}}}

    storage      $ per GB-month (GB = 2^30 bytes, as billed)
    put, get     $ per 1,000 requests (PUT/COPY/POST; GET/HEAD)
    retrieval    $ per GB read from the tier
    min_bytes    each object is billed as at least this (Standard-IA, Glacier IR: 128 KB)
    overhead     bytes billed per object at the tier's rate, and `overhead_standard` at
                 STANDARD's (Glacier Flexible and Deep Archive: 32 KB + 8 KB of index)
    transition   $ per 1,000 lifecycle transitions into the tier
    list, tag    (the table's) $ per 1,000 LIST requests; $ per object tag a month
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from origin.config import ConfigError
from origin.tiers import TIERS

GB = float(1 << 30)
KB128 = 128 * 1024


@dataclass(frozen=True)
class TierPrice:
    storage: float
    put: float
    get: float
    retrieval: float = 0.0
    min_bytes: int = 0
    overhead: int = 0
    overhead_standard: int = 0
    transition: float = 0.0


@dataclass(frozen=True)
class PriceTable:
    name: str
    note: str
    tiers: dict = field(default_factory=dict)  # tier → TierPrice
    list: float = 0.005  # $ per 1,000 LIST requests
    tag: float = 0.0  # $ per object tag a month (the originals' lifecycle tag)

    def tier(self, tier: str) -> TierPrice:
        try:
            return self.tiers[tier]
        except KeyError:
            raise ConfigError(f"price table {self.name} has no price for {tier}; add it in a JSON price file "
                              "(IMAGEHOST_PRICES)") from None


AWS = PriceTable("aws", "Amazon S3, us-east-1 list prices (2025), first 50 TB band", {
    "STANDARD": TierPrice(0.023, 0.005, 0.0004),
    "STANDARD_IA": TierPrice(0.0125, 0.01, 0.001, retrieval=0.01, min_bytes=KB128, transition=0.01),
    "ONEZONE_IA": TierPrice(0.01, 0.01, 0.001, retrieval=0.01, min_bytes=KB128, transition=0.01),
    "GLACIER_IR": TierPrice(0.004, 0.02, 0.01, retrieval=0.03, min_bytes=KB128, transition=0.02),
    "GLACIER": TierPrice(0.0036, 0.03, 0.0004, retrieval=0.01, overhead=32768, overhead_standard=8192,
                         transition=0.03),
    "DEEP_ARCHIVE": TierPrice(0.00099, 0.05, 0.0004, retrieval=0.02, overhead=32768, overhead_standard=8192,
                              transition=0.05),
}, tag=0.01 / 10_000)
R2 = PriceTable("r2", "Cloudflare R2 list prices (2025); STANDARD_IA = R2 Infrequent Access; no egress fees", {
    "STANDARD": TierPrice(0.015, 0.0045, 0.00036),
    "STANDARD_IA": TierPrice(0.01, 0.009, 0.0009, retrieval=0.01),
}, list=0.0045)
GCS = PriceTable("gcs", "Google Cloud Storage, us-central1 list prices (2025); STANDARD_IA = Nearline, "
                        "GLACIER_IR = Coldline, DEEP_ARCHIVE = Archive (which reads at once on GCS)", {
    "STANDARD": TierPrice(0.020, 0.005, 0.0004),
    "STANDARD_IA": TierPrice(0.010, 0.01, 0.001, retrieval=0.01),
    "GLACIER_IR": TierPrice(0.004, 0.02, 0.01, retrieval=0.02),
    "DEEP_ARCHIVE": TierPrice(0.0012, 0.05, 0.05, retrieval=0.05),
})
B2 = PriceTable("b2", "Backblaze B2 list prices (2025): one tier, uploads free", {
    "STANDARD": TierPrice(0.006, 0.0, 0.0004),
}, list=0.004)
TABLES = {t.name: t for t in (AWS, R2, GCS, B2)}


def _tier_price(values: dict, base: TierPrice | None, where: str) -> TierPrice:
    names = {f.name for f in fields(TierPrice)}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"{where}: unknown price fields {sorted(unknown)} (known: {sorted(names)})")
    if values.get("min_bytes", 0) not in (0, KB128):
        raise ConfigError(f"{where}: min_bytes must be 0 or {KB128} (what the store walk counts)")
    if base is None:
        missing = {"storage", "put", "get"} - set(values)
        if missing:
            raise ConfigError(f"{where}: a new tier needs {sorted(missing)}")
        return TierPrice(**values)
    return replace(base, **values)


def load(setting: str) -> PriceTable:
    """A built-in table by name, or a JSON file (optionally on top of a built-in one: "base")."""
    setting = (setting or "aws").strip()
    if setting in TABLES:
        return TABLES[setting]
    path = Path(setting)
    try:
        spec = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"IMAGEHOST_PRICES: {setting!r} is neither {', '.join(TABLES)} nor a readable file: "
                          f"{exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"IMAGEHOST_PRICES: {setting} is not JSON: {exc}") from None
    base = TABLES.get(spec.get("base", ""), PriceTable(path.stem, ""))
    tiers = dict(base.tiers)
    for tier, values in (spec.get("tiers") or {}).items():
        if tier not in TIERS:
            raise ConfigError(f"{setting}: unknown tier {tier!r} (one of {', '.join(TIERS)})")
        tiers[tier] = _tier_price(values, tiers.get(tier), f"{setting}: {tier}")
    if "STANDARD" not in tiers:
        raise ConfigError(f"{setting}: the table needs a STANDARD tier")
    return PriceTable(spec.get("name", path.stem), spec.get("note", base.note), tiers,
                      float(spec.get("list", base.list)), float(spec.get("tag", base.tag)))
