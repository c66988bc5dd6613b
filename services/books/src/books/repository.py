"""SQLite store (the embedded default): one writer on aiosqlite, one in-loop reader.

Writes go through a single aiosqlite connection in autocommit mode: each write
is one statement (``... RETURNING``), hence one transaction, committed before
the awaited call returns. aiosqlite runs that connection's statements one at a
time on its own thread, so concurrent requests never interleave inside a
write. Acknowledged means committed to the WAL (see :mod:`books.settings` for
what the ``synchronous`` mode adds).

Reads use a second, read-only ``sqlite3`` connection called directly on the
event loop. A primary-key lookup takes a few microseconds, far less than the
thread hand-off aiosqlite needs per query, and WAL readers never wait for the
writer. Every read is fetched to completion so its read transaction ends at
once (no stale snapshot, no blocked checkpoint). Rows come out of SQLite already
encoded as JSON objects with the fields in API order, so the hot paths never
build Python objects per row.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import aiosqlite
import msgspec

from books.migrations import MIGRATIONS
from books.models import BookIn, BookPatch

log = logging.getLogger("books.repository")

_BOOK_JSON = (
    "json_object('id', id, 'title', title, 'author', author, 'description', description,"
    " 'created_at', created_at, 'updated_at', updated_at)"
)
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

_SELECT_ONE = f"SELECT {_BOOK_JSON} FROM books WHERE id = ?"
_SELECT_PAGE = f"SELECT {_BOOK_JSON} FROM books ORDER BY id LIMIT ? OFFSET ?"
_INSERT = (
    "INSERT INTO books (title, author, description, created_at, updated_at)"
    f" VALUES (?, ?, ?, {_NOW}, {_NOW}) RETURNING id, {_BOOK_JSON}"
)
_REPLACE = (
    f"UPDATE books SET title = ?, author = ?, description = ?, updated_at = {_NOW}"
    f" WHERE id = ? RETURNING {_BOOK_JSON}"
)
_PATCH = (
    "UPDATE books SET title = coalesce(?, title), author = coalesce(?, author),"
    " description = CASE WHEN ? THEN ? ELSE description END,"
    f" updated_at = {_NOW} WHERE id = ? RETURNING {_BOOK_JSON}"
)
_DELETE = "DELETE FROM books WHERE id = ? RETURNING id"


class BookStore:
    """The books table in SQLite. :meth:`open` before use, :meth:`close` at shutdown."""

    backend = "sqlite"

    def __init__(self, path: Path, synchronous: str = "NORMAL") -> None:
        self.path = path
        self.synchronous = synchronous
        self._writer: aiosqlite.Connection | None = None
        self._reader: sqlite3.Connection | None = None

    async def open(self) -> None:
        writer = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await writer.execute("PRAGMA busy_timeout = 5000")
            await writer.execute("PRAGMA journal_mode = WAL")
            await writer.execute(f"PRAGMA synchronous = {self.synchronous}")
            await _migrate(writer)
        except BaseException:
            await writer.close()
            raise
        reader = sqlite3.connect(self.path, isolation_level=None)
        reader.execute("PRAGMA busy_timeout = 1000")
        reader.execute("PRAGMA query_only = ON")
        self._writer, self._reader = writer, reader
        log.info("database open", extra={"db.path": str(self.path)})

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._writer is not None:
            await self._writer.close()
            self._writer = None
            log.info("database closed", extra={"db.path": str(self.path)})

    @property
    def writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise RuntimeError("BookStore is not open")
        return self._writer

    @property
    def reader(self) -> sqlite3.Connection:
        if self._reader is None:
            raise RuntimeError("BookStore is not open")
        return self._reader

    async def ping(self) -> None:
        """Raises unless the database answers a query (through the writer's thread)."""
        await self.writer.execute_fetchall("SELECT 1")

    def get_json(self, book_id: int) -> bytes | None:
        rows = self.reader.execute(_SELECT_ONE, (book_id,)).fetchall()
        return rows[0][0].encode() if rows else None

    def list_json(self, limit: int, offset: int) -> bytes:
        rows = self.reader.execute(_SELECT_PAGE, (limit, offset)).fetchall()
        return ("[" + ",".join([row[0] for row in rows]) + "]").encode()

    async def create_json(self, book: BookIn) -> tuple[int, bytes]:
        rows = list(
            await self.writer.execute_fetchall(_INSERT, (book.title, book.author, book.description))
        )
        book_id, body = rows[0]
        return int(book_id), str(body).encode()

    async def replace_json(self, book_id: int, book: BookIn) -> bytes | None:
        params = (book.title, book.author, book.description, book_id)
        return _first_json(await self.writer.execute_fetchall(_REPLACE, params))

    async def patch_json(self, book_id: int, patch: BookPatch) -> bytes | None:
        set_description = patch.description is not msgspec.UNSET
        params = (
            _or_none(patch.title),
            _or_none(patch.author),
            set_description,
            _or_none(patch.description),
            book_id,
        )
        return _first_json(await self.writer.execute_fetchall(_PATCH, params))

    async def delete(self, book_id: int) -> bool:
        return bool(list(await self.writer.execute_fetchall(_DELETE, (book_id,))))


def _or_none(value: object) -> object:
    return None if value is msgspec.UNSET else value


def _first_json(rows: Iterable[sqlite3.Row]) -> bytes | None:
    found = list(rows)
    return str(found[0][0]).encode() if found else None


async def _migrate(writer: aiosqlite.Connection) -> None:
    """Bring the schema to the latest version, in one transaction (safe if raced)."""
    await writer.execute("BEGIN IMMEDIATE")
    try:
        (version,) = next(iter(await writer.execute_fetchall("PRAGMA user_version")))
        for index in range(int(version), len(MIGRATIONS)):
            await writer.execute(MIGRATIONS[index].sqlite)
            log.info(
                "migrated",
                extra={"db.schema_version": index + 1, "db.migration": MIGRATIONS[index].name},
            )
        await writer.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        await writer.execute("COMMIT")
    except BaseException:
        await writer.execute("ROLLBACK")
        raise
