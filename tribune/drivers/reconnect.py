"""Reconnect timing in one place: capped exponential backoff with jitter."""

from __future__ import annotations

import random


class Backoff:
    """Delays of `first`, 2x, 4x... capped at `cap`, each spread by +-`jitter` (a fraction)."""

    def __init__(
        self, first: float, cap: float, *, factor: float = 2.0, jitter: float = 0.2
    ) -> None:
        if first <= 0 or cap < first:
            raise ValueError("want 0 < first <= cap")
        self.first = first
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self.attempts = 0
        self._random = random.Random()

    def next_delay(self) -> float:
        """The delay before the next attempt; grows with each call until `reset`."""
        base = min(self.cap, self.first * self.factor**self.attempts)
        self.attempts += 1
        spread = base * self.jitter
        # Jitter below the cap only, so the cap holds: it bounds how late a device is seen back.
        return max(0.0, min(self.cap, base + self._random.uniform(-spread, spread)))

    def reset(self) -> None:
        """Start again from `first` (after a successful connection)."""
        self.attempts = 0
