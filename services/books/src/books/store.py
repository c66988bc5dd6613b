"""What the routes need of a books store, and the errors a store raises.

A leaf: the backends (:mod:`books.sqlite`, :mod:`books.postgres`) import it,
it imports neither; the app picks one (:func:`books.app.create_store`).

Both stores answer with the API's JSON already encoded, byte for byte the same
on both. Their reads differ in kind: SQLite's run on the event loop without
awaiting (a primary-key lookup is faster than any hand-off; see
:mod:`books.sqlite`), PostgreSQL's are awaited. :class:`LoopReads` and
:class:`AwaitedReads` name the two; :func:`reads_on_loop` tells which a store has.
"""

from __future__ import annotations

import inspect
from typing import Protocol, TypeGuard

from books.models import BookIn, BookPatch


class StoreUnavailable(Exception):
    """The database cannot be used right now (down, refusing, too slow): HTTP 503."""


class StoreFull(Exception):
    """No room for the write (disk full, file size limit): HTTP 507; nothing was written."""


class Store(Protocol):
    backend: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    async def create_json(self, book: BookIn) -> tuple[int, bytes]: ...

    async def replace_json(self, book_id: int, book: BookIn) -> bytes | None: ...

    async def patch_json(self, book_id: int, patch: BookPatch) -> bytes | None: ...

    async def delete(self, book_id: int) -> bool: ...


class LoopReads(Protocol):
    """Reads that answer at once, on the event loop (no await)."""

    def get_json(self, book_id: int) -> bytes | None: ...

    def list_json(self, limit: int, offset: int) -> bytes: ...


class AwaitedReads(Protocol):
    """Reads that are awaited."""

    async def get_json(self, book_id: int) -> bytes | None: ...

    async def list_json(self, limit: int, offset: int) -> bytes: ...


def reads_on_loop(store: object) -> TypeGuard[LoopReads]:
    """Does ``store`` read on the event loop (plain functions), not by coroutines?"""
    get_json = getattr(store, "get_json", None)
    list_json = getattr(store, "list_json", None)
    return (
        callable(get_json)
        and callable(list_json)
        and not inspect.iscoroutinefunction(get_json)
        and not inspect.iscoroutinefunction(list_json)
    )
