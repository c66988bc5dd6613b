"""The thresholds of the verdict (see :mod:`polling_client.verdict`).

Kept apart from the statistics so the command line can show the defaults
without importing scipy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    alpha: float = 0.01
    latency_margin: float = 0.10  # relative increase of the median
    # ... and by more than this, absolutely: on a sub-millisecond handler a few
    # hundredths of a millisecond are +10 % and noise (scheduling, a warmer process).
    latency_floor_ms: float = 1.0
    error_margin: float = 0.01  # absolute increase of the error rate
    min_samples: int = 30

    def describe(self) -> str:
        return (
            f"alpha {self.alpha:g} (one-sided), latency margin +{self.latency_margin:.0%} "
            f"and +{self.latency_floor_ms:g} ms on the median, "
            f"error margin +{self.error_margin * 100:.1f} points, "
            f"at least {self.min_samples} requests per version of each resource"
        )
