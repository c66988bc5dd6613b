"""Single-flight: concurrent calls with the same key share one execution.

The first caller for a key starts the work as its own task; callers arriving
while it runs await the same task. A caller that is cancelled (its client went
away) stops waiting but does not cancel the shared work the others wait for.
Once the work finishes the key is forgotten, so a later call runs it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._flights: dict[K, asyncio.Task[V]] = {}

    def in_flight(self) -> int:
        return len(self._flights)

    async def run(self, key: K, work: Callable[[], Coroutine[Any, Any, V]]) -> tuple[V, bool]:
        """The result of ``work()`` for ``key`` and whether this caller joined a flight."""
        task = self._flights.get(key)
        joined = task is not None
        if task is None:
            task = asyncio.create_task(work())
            self._flights[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(task), joined

    def _forget(self, key: K, done: asyncio.Task[V]) -> None:
        if self._flights.get(key) is done:
            del self._flights[key]
        if not done.cancelled():
            done.exception()  # mark retrieved: every waiter may have gone away
