"""`imagehost moderation-eval POS_DIR NEG_DIR [--model M] [--threshold T] [--json]`

Scores an operator's own labelled folders with a moderation model (POS_DIR: pictures that
should be held, NEG_DIR: pictures that should not; both walked recursively) and prints
precision, recall and the share of benign pictures held at the threshold, then the same for
a curve of thresholds, so the threshold can be chosen from the operator's own data. A file
the model cannot decode is counted apart ("unscored"), never as either label.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from origin.ingest.bulk import local_items
from origin.ports.moderation import ModerationFailed

CURVE = tuple(round(0.05 * i, 2) for i in range(1, 20))


@dataclass(frozen=True)
class Point:
    threshold: float
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def benign_held(self) -> float | None:
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else None

    def as_dict(self) -> dict:
        return {"threshold": self.threshold, "tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn,
                "precision": self.precision, "recall": self.recall, "benign_held": self.benign_held}


def point(positives: list[float], negatives: list[float], threshold: float) -> Point:
    """Held means score > threshold (as ingest decides)."""
    tp = sum(s > threshold for s in positives)
    fp = sum(s > threshold for s in negatives)
    return Point(threshold, tp, fp, len(positives) - tp, len(negatives) - fp)


def score_folder(moderator, folder: str) -> tuple[list[float], list[str]]:
    scores, unscored = [], []
    for item in local_items([folder]):
        try:
            scores.append(moderator.score(item.read()).score)
        except (ModerationFailed, OSError):
            unscored.append(item.name)
    return scores, unscored


def _pct(value: float | None) -> str:
    return "   n/a" if value is None else f"{100 * value:5.1f}%"


def run(settings, args) -> int:
    from origin.wiring import open_moderator

    moderator = open_moderator(args.model or settings.moderation)
    threshold = settings.nsfw_threshold if args.threshold is None else args.threshold
    positives, pos_bad = score_folder(moderator, args.pos_dir)
    negatives, neg_bad = score_folder(moderator, args.neg_dir)
    if not positives and not negatives:
        print("imagehost: moderation-eval: no picture could be scored in either folder", file=sys.stderr)
        return 2
    at = point(positives, negatives, threshold)
    curve = [point(positives, negatives, t) for t in sorted({*CURVE, threshold})]
    if args.json:
        print(json.dumps({"model": moderator.model, "positives": len(positives), "negatives": len(negatives),
                          "unscored": pos_bad + neg_bad, "at_threshold": at.as_dict(),
                          "curve": [p.as_dict() for p in curve]}))
        return 0
    print(f"model {moderator.model}: {len(positives)} positives ({args.pos_dir}), "
          f"{len(negatives)} negatives ({args.neg_dir}), {len(pos_bad) + len(neg_bad)} unscored")
    print(f"at threshold {threshold:g}: precision {_pct(at.precision).strip()}, recall {_pct(at.recall).strip()}, "
          f"benign held {_pct(at.benign_held).strip()} (tp {at.tp}, fp {at.fp}, fn {at.fn}, tn {at.tn})")
    print(f"{'threshold':>9}  {'precision':>9}  {'recall':>7}  {'benign held':>11}")
    for p in curve:
        mark = "  <- IMAGEHOST_NSFW_THRESHOLD" if p.threshold == threshold else ""
        print(f"{p.threshold:>9.2f}  {_pct(p.precision):>9}  {_pct(p.recall):>7}  {_pct(p.benign_held):>11}{mark}")
    for name in pos_bad + neg_bad:
        print(f"imagehost: {name}: unscored (not a picture the model could decode)", file=sys.stderr)
    return 0
