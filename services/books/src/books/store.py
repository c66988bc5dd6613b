"""Where books are kept: SQLite (embedded default) or PostgreSQL (shared by replicas).

Both stores answer with the API's JSON already encoded, byte for byte the same
on both. The SQLite store reads synchronously on the event loop (a primary-key
lookup is faster than any hand-off; see :mod:`books.repository`), so the
routes use its reads as plain functions; PostgreSQL reads are awaited.
"""

from __future__ import annotations

from typing import Protocol

from books.models import BookIn, BookPatch
from books.settings import Settings


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


def create_store(settings: Settings) -> Store:
    """The store ``settings`` ask for (not opened yet)."""
    if settings.postgres_url is not None:
        from books.postgres import PostgresStore

        return PostgresStore(settings)
    from books.repository import BookStore

    return BookStore(settings.db_path, settings.db_synchronous)
