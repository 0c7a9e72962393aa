"""Test adapter: every image gets the same score (IMAGEHOST_MODERATION=fixed:<score>[:<seconds>]).

Lets tests force the held path (fixed:0.99) or the clean path (fixed:0) without
loading a model, and hold a worker inside a job for a while (fixed:0:5) so a
test can kill it there. It does not look at the bytes.
"""
from __future__ import annotations

import time

from origin.ports.moderation import Verdict


class FixedModerator:
    def __init__(self, score: float, delay_seconds: float = 0.0):
        self.verdict = Verdict(float(score), (("fixed", float(score)),), f"fixed:{score:g}")
        self.model = self.verdict.model
        self.delay = delay_seconds

    def score(self, image: bytes) -> Verdict:
        if self.delay:
            time.sleep(self.delay)
        return self.verdict
