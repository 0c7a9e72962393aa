"""Storage tiers: S3's storage-class names, warm to cold, and the `TIER:DAYS` rule syntax.

Every object in a store sits in one tier (origin/ports/store.py); lifecycle rules
(origin/lifecycle/rules.py) move objects colder as they age, never warmer.
"""
from __future__ import annotations

TIERS = ("STANDARD", "STANDARD_IA", "ONEZONE_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
ARCHIVED = frozenset({"GLACIER", "DEEP_ARCHIVE"})  # a read needs a restore first (minutes to hours)
INSTANT = tuple(t for t in TIERS if t not in ARCHIVED)
MIN_DAYS = {"STANDARD_IA": 30, "ONEZONE_IA": 30}  # S3 refuses earlier lifecycle transitions to these


def colder(a: str, b: str) -> bool:
    """Whether tier `a` is colder than tier `b`."""
    return TIERS.index(a) > TIERS.index(b)


class RuleError(ValueError):
    """A lifecycle rule that cannot be applied."""


def parse_rule(name: str, text: str) -> tuple[str, int] | None:
    """`TIER:DAYS` → (tier, days); `off` (or empty) → None."""
    text = text.strip()
    if text.lower() in ("", "off", "none"):
        return None
    tier, _, days = text.partition(":")
    tier = tier.strip().upper()
    if tier not in TIERS or tier == "STANDARD":
        raise RuleError(f"lifecycle rule {name}: unknown tier {tier!r} (one of {', '.join(TIERS[1:])})")
    try:
        count = int(days or "0")
    except ValueError:
        raise RuleError(f"lifecycle rule {name}: days must be a whole number, got {days!r}") from None
    if count < 0:
        raise RuleError(f"lifecycle rule {name}: days cannot be negative")
    if 0 < count < MIN_DAYS.get(tier, 0):
        raise RuleError(f"lifecycle rule {name}: S3 moves objects to {tier} after {MIN_DAYS[tier]} days at the "
                        "earliest (or 0: written there at once)")
    return tier, count


def parse_tier_dirs(text: str) -> dict[str, str]:
    """`TIER=dir,TIER=dir` → {tier: dir} (the local store's tier directories)."""
    out = {}
    for part in text.split(","):
        if not part.strip():
            continue
        tier, sep, path = part.partition("=")
        tier = tier.strip().upper()
        if not sep or not path.strip():
            raise RuleError(f"expected TIER=directory, got {part.strip()!r}")
        if tier not in INSTANT or tier == "STANDARD":
            raise RuleError(f"the local store has no tier {tier!r} (one of {', '.join(INSTANT[1:])})")
        out[tier] = path.strip()
    return out
