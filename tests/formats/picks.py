"""Choices for the file models of the spec tests (BAI2, MT940, camt.053): one model, two sources of choice,
a seeded ``random.Random`` for the batch that goes through Spark and hypothesis for shrinkable draws."""
from __future__ import annotations

import random

from hypothesis import strategies as st


class RandomPick:
    """Choices from a seeded ``random.Random`` (the batch that goes through Spark)."""

    def __init__(self, seed):
        self.rng = random.Random(seed)

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, options):
        return options[self.rng.randrange(len(options))]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p


class DrawPick:
    """Choices drawn by hypothesis (shrinkable)."""

    def __init__(self, data):
        self.data = data

    def integer(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def choice(self, options):
        return self.data.draw(st.sampled_from(options))

    def chance(self, p: float) -> bool:
        return self.data.draw(st.integers(0, 99)) < round(p * 100)
