"""File changes in batches: a burst of saves is one batch, however long it lasts.

watchfiles' own grouping cannot be the burst rule: it ends a group as soon as a
step adds no *new* (change, path) pair, so an editor saving the same file every
20 ms gets a group every step or two for as long as it saves. Both followers of
files (the stack's live reload, the gateway's route reload) read watchfiles'
groups every ``WATCH_STEP_MS`` and merge them here until ``quiet_ms`` pass with
no group (at most ``longest_ms``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from watchfiles import Change, awatch

FileChange = tuple[Change, str]
WATCH_STEP_MS = 50


def watch_batches(
    *directories: Path,
    watch_filter: Callable[[Change, str], bool],
    stop: asyncio.Event,
    quiet_ms: int,
    longest_ms: int,
    recursive: bool = True,
) -> AsyncIterator[set[FileChange]]:
    """Batches of changes under ``directories`` until ``stop`` is set."""
    groups = awatch(
        *directories,
        watch_filter=watch_filter,
        recursive=recursive,
        step=WATCH_STEP_MS,
        debounce=WATCH_STEP_MS * 4,
        stop_event=StopWith(stop),
    )
    return merge_groups(groups, quiet_ms / 1000, longest_ms / 1000)


class StopWith:
    """A watch's stop event: set when ``stop`` is, or by awatch itself.

    awatch sets the event it is given when its read is cancelled (as
    :func:`merge_groups` does when a watch ends): that must end this watch only,
    never set the caller's ``stop`` (the stack's, or the gateway's).
    """

    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop
        self._own = False

    def is_set(self) -> bool:
        return self._own or self._stop.is_set()

    def set(self) -> None:
        self._own = True


async def merge_groups(
    groups: AsyncIterator[set[FileChange]], quiet_s: float, longest_s: float
) -> AsyncIterator[set[FileChange]]:
    """The watcher's groups merged until none arrives for ``quiet_s`` (at most ``longest_s``).

    The pending read of the next group survives a quiet period: it becomes the
    start of the next batch, so no change is lost between batches.
    """
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[set[FileChange]] | None = None
    try:
        while True:
            pending = pending or asyncio.ensure_future(anext(groups))
            try:
                batch = set(await pending)
            except StopAsyncIteration:
                return
            pending = None
            deadline = loop.time() + longest_s
            while (left := deadline - loop.time()) > 0:
                pending = asyncio.ensure_future(anext(groups))
                done, _ = await asyncio.wait({pending}, timeout=min(quiet_s, left))
                if not done:
                    break  # quiet: ``pending`` starts the next batch
                try:
                    batch |= pending.result()
                except StopAsyncIteration:
                    yield batch
                    return
                pending = None
            yield batch
    finally:
        if pending is not None:
            pending.cancel()
