"""Test adapter: every image gets the same score (IMAGEHOST_MODERATION=fixed:<score>).

Lets tests force the held path (fixed:0.99) or the clean path (fixed:0) without
loading a model. It does not look at the bytes.
"""
from __future__ import annotations

from origin.ports.moderation import Verdict


class FixedModerator:
    def __init__(self, score: float):
        self.verdict = Verdict(float(score), (("fixed", float(score)),), f"fixed:{score:g}")
        self.model = self.verdict.model

    def score(self, image: bytes) -> Verdict:
        return self.verdict
