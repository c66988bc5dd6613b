"""Paces requests at a steady rate.

The limiter hands out *scheduled ticks*: tick ``i`` is due at
``start + i / rate``, so the long-run rate is exact however long each wait
really took (no drift from sleep overshoot). If the caller falls behind (a slow
server, all connections busy), at most ``burst`` ticks are made up at once;
older missed ticks are dropped rather than fired in a storm. This is the
generic cell rate algorithm, equivalent to a token bucket of size ``burst``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class RateLimiter:
    def __init__(
        self,
        rate: float,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None

    async def acquire(self) -> None:
        """Wait until the next tick is due."""
        now = self._clock()
        due = now if self._next is None else max(self._next, now - self._tolerance)
        self._next = due + self._interval
        if due > now:
            await self._sleep(due - now)
