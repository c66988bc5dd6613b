"""A small pool of asyncpg connections, for the one way books uses them.

Books runs one autocommit statement per borrowed connection and never changes
session state, so a connection needs no reset between users, and one that saw
any error is simply closed. That makes the pool's hot path two list operations:
a free connection is taken and given back without awaiting anything, where
``asyncpg.Pool`` costs a queue wait and a task (``asyncio.shield``) per
release: CPU of the same order as the query itself (``bench/bench_books.py
--db postgres`` prints the CPU per request).

- :meth:`Pool.acquire` takes a free connection at once; else opens a new one
  while fewer than ``max_size`` exist (bounded by the connect timeout); else
  waits for one to be given back, at most ``wait_s`` (then ``TimeoutError``).
- :meth:`Pool.release` gives a healthy connection to the longest waiter, or
  back to the free list; a closed one is dropped, and a waiter is woken to
  open its replacement.
- :meth:`Pool.discard` closes a connection whose statement failed or was
  cancelled (its protocol state is unknown) and frees its place.
- Connections the server closed while idle are dropped when next taken, so the
  pool recovers by itself once the server is back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable

import asyncpg

Connect = Callable[[], Awaitable[asyncpg.Connection]]


class Pool:
    """Up to ``max_size`` connections made by ``connect``. :meth:`close` at shutdown."""

    def __init__(self, connect: Connect, max_size: int) -> None:
        self._connect = connect
        self.max_size = max_size
        self._free: list[asyncpg.Connection] = []
        self._size = 0  # connections open or being opened, free or lent
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    async def open(self) -> None:
        """Open the first connection (so a bad setting fails at start-up)."""
        self.release(await self._new())

    async def acquire(self, wait_s: float) -> asyncpg.Connection:
        if self._closed:
            raise asyncpg.InterfaceError("pool is closed")
        while self._free:
            connection = self._free.pop()
            if not connection.is_closed():
                return connection
            self._size -= 1
        if self._size < self.max_size:
            return await self._new()
        waiter: asyncio.Future[asyncpg.Connection | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(wait_s):
                given = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                self.release(waiter.result())  # given just as the wait ended: pass it on
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            raise
        return given if given is not None else await self._new()

    async def _new(self) -> asyncpg.Connection:
        self._size += 1
        try:
            return await self._connect()
        except BaseException:
            self._size -= 1
            self._wake_one(None)  # a waiter may try in its turn
            raise

    def release(self, connection: asyncpg.Connection) -> None:
        if self._closed or connection.is_closed():
            self._drop(connection)
            return
        if not self._wake_one(connection):
            self._free.append(connection)

    def discard(self, connection: asyncpg.Connection) -> None:
        """Close ``connection`` (its state is unknown after an error) and free its place."""
        self._drop(connection)

    def _drop(self, connection: asyncpg.Connection) -> None:
        connection.terminate()
        self._size -= 1
        if not self._closed:
            self._wake_one(None)  # None: open a new connection in its place

    def _wake_one(self, given: asyncpg.Connection | None) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(given)
                return True
        return False

    async def close(self, grace_s: float) -> None:
        """Close the free connections gracefully (within ``grace_s``); lent ones as given back."""
        self._closed = True
        free, self._free = self._free, []
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("pool is closed"))
        self._waiters.clear()
        for connection in free:
            try:
                await asyncio.wait_for(connection.close(), grace_s)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                connection.terminate()
            self._size -= 1
