"""A burst of saves is one batch for the stack's reload, however long it lasts.

watchfiles ends a group as soon as a step adds no new (change, path) pair, so
an editor saving one file every 20 ms yields a group every step or two;
``devstack.watching`` merges them until the files are quiet.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

from devstack.reload import STEP_MS
from devstack.watching import FileChange, merge_groups, watch_batches
from testkit.devstack import save_file
from watchfiles import Change


async def _groups(queue: asyncio.Queue[set[FileChange] | None]) -> AsyncIterator[set[FileChange]]:
    while (group := await queue.get()) is not None:
        yield group


async def test_groups_that_arrive_together_are_one_batch_and_a_later_one_the_next() -> None:
    queue: asyncio.Queue[set[FileChange] | None] = asyncio.Queue()
    first = {(Change.modified, "/src/a.py")}
    second = {(Change.added, "/src/b.py")}
    for group in (first, first, second):
        queue.put_nowait(group)
    batches = merge_groups(_groups(queue), quiet_s=0.05, longest_s=10.0)
    assert await anext(batches) == first | second  # yielded once the queue was quiet
    third = {(Change.deleted, "/src/c.py")}
    queue.put_nowait(third)
    queue.put_nowait(None)  # the watch ends: what it had is still handed over
    assert await anext(batches) == third
    assert [batch async for batch in batches] == []


async def test_a_burst_of_saves_of_one_file_is_one_batch(tmp_path: Path) -> None:
    """Saves 20 ms apart for longer than several watcher steps: one batch.

    A stall of this test between two saves as long as the quiet period rightly
    makes another batch, so each measured stall allows one more.
    """
    source = tmp_path / "app.py"
    source.write_text("x = 0\n")
    stopping = asyncio.Event()
    watch = watch_batches(
        tmp_path,
        watch_filter=lambda _change, _path: True,
        stop=stopping,
        quiet_ms=STEP_MS,
        longest_ms=10_000,
    )
    sentinel = tmp_path / "sentinel.txt"
    batches: list[set[FileChange]] = []
    sentinel_seen = asyncio.Event()

    async def collect() -> None:
        async for batch in watch:
            batches.append(batch)
            if any(path == str(sentinel) for _, path in batch):
                sentinel_seen.set()

    collector = asyncio.create_task(collect())
    await asyncio.sleep(0.2)  # the watch starts in a thread: give it a head start (pacing)
    stalls = 0
    saves = 40  # 40 x 20 ms: many times watchfiles' step
    last = time.monotonic()
    for n in range(saves):
        await asyncio.to_thread(save_file, source, f"x = {n}\n")
        now = time.monotonic()
        stalls += n > 0 and now - last >= STEP_MS / 1000
        last = now
        await asyncio.sleep(0.02)
    await asyncio.sleep(2 * STEP_MS / 1000)  # pacing: the sentinel comes after a quiet period
    sentinel.write_text("done\n")
    await sentinel_seen.wait()
    stopping.set()
    await collector
    with_source = [batch for batch in batches if any(path == str(source) for _, path in batch)]
    assert 1 <= len(with_source) <= 1 + stalls, (stalls, batches)
