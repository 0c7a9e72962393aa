"""Moderation port: NudeNet's rule (pure), the settings, the simple adapters.

The default model (open_nsfw) is tested for real in test_moderation_opennsfw.py; the
opt-in NudeNet model in test_moderation_nudenet.py (skipped when the extra is absent).
"""
from __future__ import annotations


import pytest

from origin.config import ConfigError, Settings
from origin.ports.moderation import (
    Verdict,
    check_setting,
    explicit_score,
    label_summary,
    verdict_from_detections,
)
from origin.wiring import open_moderator
from tests import images

THRESHOLD = Settings().nsfw_threshold
NUDENET_THRESHOLD = 0.6  # what the README recommends with IMAGEHOST_MODERATION=nudenet


def det(label: str, score: float) -> dict:
    return {"class": label, "score": score, "box": [0, 0, 10, 10]}


# --- the rule (pure) ---------------------------------------------------------


def test_rule_weights_explicit_classes():
    assert explicit_score([det("FEMALE_GENITALIA_EXPOSED", 0.7)]) == 0.7
    assert explicit_score([det("MALE_GENITALIA_EXPOSED", 0.61)]) == 0.61
    assert explicit_score([det("ANUS_EXPOSED", 0.5)]) == 0.5
    assert explicit_score([det("FEMALE_BREAST_EXPOSED", 0.8)]) == pytest.approx(0.72)
    assert explicit_score([det("BUTTOCKS_EXPOSED", 0.8)]) == pytest.approx(0.6)


def test_rule_ignores_covered_face_and_everyday_classes():
    harmless = ["FEMALE_BREAST_COVERED", "FEMALE_GENITALIA_COVERED", "BUTTOCKS_COVERED", "ANUS_COVERED",
                "FACE_FEMALE", "FACE_MALE", "MALE_BREAST_EXPOSED", "BELLY_EXPOSED", "ARMPITS_EXPOSED",
                "FEET_EXPOSED", "SOMETHING_NEW"]
    assert explicit_score([det(label, 0.99) for label in harmless]) == 0.0
    assert explicit_score([]) == 0.0


def test_rule_takes_the_most_explicit_region_not_a_sum():
    crowd = [det("BUTTOCKS_EXPOSED", 0.4)] * 20 + [det("FEMALE_BREAST_EXPOSED", 0.5)]
    assert explicit_score(crowd) == pytest.approx(0.45)  # many weak boxes stay weak
    mixed = [det("FACE_FEMALE", 0.95), det("FEMALE_BREAST_EXPOSED", 0.3), det("FEMALE_GENITALIA_EXPOSED", 0.66)]
    assert explicit_score(mixed) == 0.66


def test_rule_against_the_threshold_recommended_for_nudenet():
    held = lambda label, conf: explicit_score([det(label, conf)]) > NUDENET_THRESHOLD  # noqa: E731
    assert held("FEMALE_GENITALIA_EXPOSED", 0.65) and not held("FEMALE_GENITALIA_EXPOSED", 0.55)
    assert held("FEMALE_BREAST_EXPOSED", 0.7) and not held("FEMALE_BREAST_EXPOSED", 0.65)
    assert held("BUTTOCKS_EXPOSED", 0.85) and not held("BUTTOCKS_EXPOSED", 0.75)
    assert not held("FEMALE_BREAST_COVERED", 1.0)


def test_verdict_labels_list_every_class_once_most_confident_first():
    verdict = verdict_from_detections(
        [det("FACE_FEMALE", 0.81), det("BUTTOCKS_EXPOSED", 0.55), det("FACE_FEMALE", 0.4), det("FEET_EXPOSED", 0.3)],
        "m",
    )
    assert verdict.labels == (("FACE_FEMALE", 0.81), ("BUTTOCKS_EXPOSED", 0.55), ("FEET_EXPOSED", 0.3))
    assert verdict.score == pytest.approx(0.4125) and verdict.model == "m"
    assert label_summary([]) == ()


def test_verdict_is_frozen_and_bounded():
    verdict = Verdict(0.5, (("X", 0.5),), "m")
    with pytest.raises(AttributeError):
        verdict.score = 0.9  # type: ignore[misc]
    with pytest.raises(ValueError):
        Verdict(1.5)
    with pytest.raises(ValueError):
        Verdict(-0.1)


# --- settings and the simple adapters -----------------------------------------


def test_fixed_adapter_forces_the_score():
    moderator = open_moderator("fixed:0.97")
    verdict = moderator.score(b"not even an image")
    assert verdict.score == 0.97 > THRESHOLD
    assert verdict.model == moderator.model == "fixed:0.97"
    assert open_moderator("fixed:0").score(images.jpeg()).score == 0.0


def test_off_is_explicit_and_scores_zero():
    verdict = open_moderator("off").score(images.jpeg())
    assert verdict == Verdict(0.0, (), "off")


@pytest.mark.parametrize("bad", ["", "  ", "none", "nudenet:1", "open_nsfw:0.5", "fixed:", "fixed:abc", "fixed:1.5", "fixed:-0.1", "off:1"])
def test_bad_settings_are_config_errors_never_a_silent_off(bad):
    with pytest.raises(ConfigError):
        check_setting(bad)
    with pytest.raises(ConfigError):
        open_moderator(bad)


def test_default_setting_is_valid_and_names_the_permissive_model():
    assert Settings().moderation == "open_nsfw"
    check_setting(Settings().moderation)
    check_setting(" NudeNet ")
    check_setting("OPEN_NSFW")
