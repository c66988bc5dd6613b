"""Latency percentiles and bounded sample storage.

Percentiles use linear interpolation between closest ranks (numpy's default
"linear" method), so p50 of an even-sized sample is the mean of the two middle
values. :class:`Reservoir` keeps every sample up to its capacity and a uniform
random subset beyond it (Vitter's algorithm R), so memory stays bounded when the
client polls for days; percentiles are exact below the capacity.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

PERCENTILES = (50.0, 95.0, 99.0)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of ``values``; NaN when empty."""
    if not 0.0 <= q <= 100.0:
        raise ValueError("q must be within 0-100")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def percentiles(values: Sequence[float]) -> dict[float, float]:
    ordered = sorted(values)
    return {q: percentile(ordered, q) for q in PERCENTILES}


class Reservoir:
    """At most ``capacity`` samples, a uniform sample of everything seen."""

    def __init__(self, capacity: int = 100_000, *, seed: int | None = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.seen = 0
        self._values: list[float] = []
        self._random = random.Random(seed)

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self._values) < self.capacity:
            self._values.append(value)
            return
        slot = self._random.randrange(self.seen)
        if slot < self.capacity:
            self._values[slot] = value

    def values(self) -> list[float]:
        return list(self._values)
