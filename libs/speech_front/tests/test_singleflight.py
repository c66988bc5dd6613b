"""Single-flight: one execution per key among concurrent callers."""

from __future__ import annotations

import asyncio

import pytest
from speech_front.singleflight import SingleFlight


async def test_concurrent_callers_share_one_run() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    runs = 0
    release = asyncio.Event()

    async def work() -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        return 42

    callers = [asyncio.create_task(flights.run("k", work)) for _ in range(10)]
    await asyncio.sleep(0)
    assert flights.in_flight() == 1
    release.set()
    results = await asyncio.gather(*callers)
    assert runs == 1
    assert [value for value, _ in results] == [42] * 10
    assert sorted(joined for _, joined in results) == [False] + [True] * 9
    assert flights.in_flight() == 0


async def test_a_later_call_runs_again_and_keys_are_independent() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    calls: list[str] = []

    async def work_for(key: str) -> str:
        calls.append(key)
        return key

    assert await flights.run("a", lambda: work_for("a")) == ("a", False)
    assert await flights.run("a", lambda: work_for("a")) == ("a", False)
    await asyncio.gather(
        flights.run("b", lambda: work_for("b")), flights.run("c", lambda: work_for("c"))
    )
    assert calls == ["a", "a", "b", "c"]


async def test_errors_reach_every_caller() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    release = asyncio.Event()

    async def failing() -> int:
        await release.wait()
        raise RuntimeError("backend down")

    callers = [asyncio.create_task(flights.run("k", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert flights.in_flight() == 0


async def test_a_cancelled_caller_does_not_cancel_the_others() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    release = asyncio.Event()

    async def work() -> int:
        await release.wait()
        return 7

    first = asyncio.create_task(flights.run("k", work))
    second = asyncio.create_task(flights.run("k", work))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    release.set()
    assert await second == (7, True)
