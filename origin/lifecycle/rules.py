"""Lifecycle rules: which objects move to which tier, and when.

Three rules, each `TIER:DAYS` in the settings (or `off`):

    images          IMAGEHOST_LIFECYCLE_IMAGES        STANDARD_IA:30   every object under images/
                                                                       of at least IMAGEHOST_LIFECYCLE_MIN_BYTES
    originals       IMAGEHOST_LIFECYCLE_ORIGINALS     GLACIER_IR:365   sources and masters
    kept_sources    IMAGEHOST_LIFECYCLE_KEPT_SOURCES  GLACIER_IR:0     sources/ (owner-only copies)

An object's tier is the coldest one among the rules that select it and are due.
Days 0 means "written there at once" (`Placement`, applied by the store's put).

On S3 the bucket applies them (`s3_rules`, installed by `imagehost setup`): the
images rule selects by prefix and size, the originals rule by the tag that
sources and masters carry from their first write (a filter cannot exclude a tag,
so the images rule moves sources to IA at 30 days too: they are read only when a
variant is rendered). The local store has no lifecycle engine:
`imagehost lifecycle` applies the same decisions (origin/lifecycle/transitions.py).

Objects under the minimum size stay in STANDARD: Standard-IA and Glacier IR bill
every object as at least 128 KB, so a 10 KB thumbnail costs more there (S3's own
default since 2024 does the same).
"""
from __future__ import annotations

from dataclasses import dataclass

from origin.config import ConfigError
from origin.keys import IMAGES, SOURCES, object_class
from origin.ports.store import Placement
from origin.tiers import ARCHIVED, MIN_DAYS, TIERS, RuleError, colder, parse_rule

ORIGINAL_CLASSES = frozenset({"source", "master"})
TAG_KEY = "imagehost-class"
TAG = f"{TAG_KEY}=original"
DAY = 86_400.0


@dataclass(frozen=True)
class Rule:
    name: str
    tier: str
    days: int
    top: str  # the key folder it covers: images | sources
    classes: frozenset[str] | None = None  # None: every class under `top`
    min_bytes: int = 0

    def selects(self, key: str, size: int) -> bool:
        if not key.startswith(self.top + "/") or size < self.min_bytes:
            return False
        return self.classes is None or object_class(key) in self.classes

    def due(self, age_seconds: float) -> bool:
        return age_seconds >= self.days * DAY


@dataclass(frozen=True)
class Rules:
    rules: tuple[Rule, ...]
    min_bytes: int

    @classmethod
    def from_settings(cls, settings) -> "Rules":
        min_bytes = settings.lifecycle_min_bytes
        made = []
        for name, text, top, classes in (
                ("images", settings.lifecycle_images, IMAGES, None),
                ("originals", settings.lifecycle_originals, IMAGES, ORIGINAL_CLASSES),
                ("kept_sources", settings.lifecycle_kept_sources, SOURCES, None)):
            try:
                parsed = parse_rule(name, text)
            except RuleError as exc:
                raise ConfigError(str(exc)) from None
            if parsed is not None:
                made.append(Rule(name, parsed[0], parsed[1], top, classes, min_bytes))
        rules = cls(tuple(made), min_bytes)
        if settings.store == "local":
            archived = [r for r in rules.rules if r.tier in ARCHIVED]
            if archived:
                raise ConfigError(f"lifecycle rule {archived[0].name}: the local store has no {archived[0].tier} "
                                  "(it would need a restore); use STANDARD_IA or GLACIER_IR")
        return rules

    def target(self, key: str, size: int, age_seconds: float) -> str:
        """The tier an object of this key, size and age belongs in now."""
        tier = "STANDARD"
        for rule in self.rules:
            if rule.selects(key, size) and rule.due(age_seconds) and colder(rule.tier, tier):
                tier = rule.tier
        return tier

    def tiers_used(self) -> tuple[str, ...]:
        return tuple(sorted({r.tier for r in self.rules}, key=TIERS.index))

    def placement(self) -> Placement:
        """What the store's put does at once: days-0 rules, and the tag the originals rule selects on."""
        tiers: dict[str, str] = {}
        for rule in self.rules:
            if rule.days == 0:
                classes = rule.classes or ({"kept_source"} if rule.top == SOURCES else
                                           {"source", "master", "intermediate", "thumbnail", "variant"})
                for cls_ in classes:
                    if colder(rule.tier, tiers.get(cls_, "STANDARD")):
                        tiers[cls_] = rule.tier
        tagged = any(r.classes == ORIGINAL_CLASSES and r.days > 0 for r in self.rules)
        tags = tuple((c, TAG) for c in sorted(ORIGINAL_CLASSES)) if tagged else ()
        return Placement(tuple(sorted(tiers.items())), self.min_bytes, tags)

    def s3_rules(self, prefix: str) -> list[dict]:
        """The bucket lifecycle rules (put_bucket_lifecycle_configuration) for keys under `prefix`."""
        out = []
        for rule in self.rules:
            if rule.days == 0 and rule.tier in MIN_DAYS:
                continue  # written there by put; S3 has no 0-day rule for IA
            conditions: dict = {"Prefix": f"{prefix}{rule.top}/"}
            if rule.min_bytes:
                conditions["ObjectSizeGreaterThan"] = rule.min_bytes - 1
            if rule.classes == ORIGINAL_CLASSES:
                conditions["Tags"] = [{"Key": TAG_KEY, "Value": "original"}]
            out.append({
                "ID": f"imagehost-{rule.name.replace('_', '-')}",
                "Status": "Enabled",
                "Filter": {"And": conditions} if len(conditions) > 1 else conditions,
                "Transitions": [{"Days": rule.days, "StorageClass": rule.tier}],
            })
        return out
