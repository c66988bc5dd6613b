"""Run a sequence of async jobs a few ahead, yielding results in order.

Used by the engines to synthesize the next segment(s) while the current one is
being sent. When the consumer stops early (client cancel, deadline, error) the
jobs not yet started are never started and the running ones are cancelled and
awaited, so no work outlives the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def run_ahead(
    jobs: Iterable[Callable[[], Awaitable[T]]], depth: int
) -> AsyncGenerator[T, None]:
    running: list[asyncio.Future[T]] = []
    try:
        for job in jobs:
            running.append(asyncio.ensure_future(job()))
            if len(running) >= depth:
                yield await running.pop(0)
        while running:
            yield await running.pop(0)
    finally:
        for future in running:
            future.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
