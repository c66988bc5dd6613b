"""SQLite store (the embedded default): writes and reads on the event loop.

Every write is one statement (``... RETURNING``) in autocommit, hence one
transaction, committed before the call returns: acknowledged means committed
to the WAL (see :mod:`books.settings` for what ``synchronous`` adds).

Where statements run:

- **Writes, on the event loop** (``synchronous=NORMAL``, the default): in WAL
  mode with ``NORMAL`` a commit is a ``write()`` into the page cache, no
  ``fsync``: far cheaper than handing the statement to a thread and back
  (aiosqlite's thread wake-ups cost several times the write itself;
  ``bench/bench_books.py`` measures it). One statement at a time on the
  loop also means concurrent requests never interleave inside a write. The
  loop's connection never waits: ``busy_timeout`` is 0 and it never
  checkpoints (``wal_autocheckpoint=0``).
- **Writes, on the writer thread** (aiosqlite), when the loop must not wait:
  with ``synchronous=FULL`` (every commit waits for an ``fsync``); and while
  another connection (another process, a ``sqlite3`` shell) holds the write
  lock: the statement is handed to the thread, which waits up to 5 s for it.
  While any write (or a checkpoint) is on the thread, later writes queue
  behind it, so writes keep their order and never race each other's snapshots.
- **Checkpoints, on the writer thread**: after every
  :data:`CHECKPOINT_EVERY_WRITES` writes on the loop, one ``PASSIVE``
  checkpoint (it copies the WAL into the database and does the ``fsync``
  there), so the WAL stays bounded without the loop ever waiting for a disk.
  Writes arriving meanwhile queue behind it on the thread: a checkpoint racing
  new frames would never complete, and the WAL would grow without end.
- **The first write after a checkpoint, on the writer thread**: it is the
  write that restarts the WAL from its beginning, and SQLite syncs the new
  WAL header then even with ``synchronous=NORMAL`` (PRAGMA synchronous docs;
  two ``fdatasync`` calls on the loop's thread under strace before this rule).
  Writes after it return to the loop. (A reader in another process holding an
  old snapshot can defer the restart past that write; books' own reads never
  do, they end at once.)
- **Reads, on the event loop**: a second, read-only connection; a primary-key
  lookup takes a few microseconds and WAL readers never wait for the writer.
  Every read is fetched to completion so its read transaction ends at once (no
  stale snapshot, no blocked checkpoint).

Rows come out of SQLite already encoded: each row keeps its API JSON in the
STORED generated column ``doc`` (see :mod:`books.migrations`), so reads never
build Python objects per row, nor per-row JSON in SQLite.

A database that cannot be used right now (locked past the wait, I/O error,
read-only file) raises :class:`~books.store.StoreUnavailable`: HTTP 503 with
``Retry-After``, never a 500. A write with no room left (``SQLITE_FULL``, or an
I/O error on a file at ``RLIMIT_FSIZE`` or a file system with no free space)
raises :class:`~books.store.StoreFull`: HTTP 507. Either way the statement's
transaction is rolled back by SQLite: nothing is half-written.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
import msgspec

from books.migrations import MIGRATIONS
from books.models import BookIn, BookPatch
from books.store import StoreFull, StoreUnavailable

log = logging.getLogger("books.sqlite")

CHECKPOINT_EVERY_WRITES = 1000
WRITER_BUSY_TIMEOUT_MS = 5000

_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

_SELECT_ONE = "SELECT doc FROM books WHERE id = ?"
_SELECT_PAGE = "SELECT doc FROM books ORDER BY id LIMIT ? OFFSET ?"
_INSERT = (
    "INSERT INTO books (title, author, description, created_at, updated_at)"
    f" VALUES (?, ?, ?, {_NOW}, {_NOW}) RETURNING id, doc"
)
_REPLACE = (
    f"UPDATE books SET title = ?, author = ?, description = ?, updated_at = {_NOW}"
    " WHERE id = ? RETURNING doc"
)
_PATCH = (
    "UPDATE books SET title = coalesce(?, title), author = coalesce(?, author),"
    " description = CASE WHEN ? THEN ? ELSE description END,"
    f" updated_at = {_NOW} WHERE id = ? RETURNING doc"
)
_DELETE = "DELETE FROM books WHERE id = ? RETURNING id"

# Primary result codes that mean "the database cannot be used right now".
_UNAVAILABLE_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_CANTOPEN,
    }
)


def _primary_code(error: sqlite3.Error) -> int:
    return getattr(error, "sqlite_errorcode", 0) & 0xFF


# Less free space than this on the database's file system counts as full.
FULL_BELOW_BYTES = 1 << 20


def _out_of_room(path: Path) -> bool:
    """Whether a failed write to ``path`` (or its WAL) is for want of room.

    SQLite says ``SQLITE_FULL`` only for ``ENOSPC``; a write past the process's
    file size limit (``EFBIG``) or a quota (``EDQUOT``) is an ``SQLITE_IOERR``.
    Python cannot read the errno SQLite saw, so look at what it would have been.
    """
    limit, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if limit != resource.RLIM_INFINITY:
        for suffix in ("", "-wal", "-journal"):
            try:
                size = os.stat(f"{path}{suffix}").st_size
            except OSError:
                continue
            if size + FULL_BELOW_BYTES > limit:
                return True
    try:
        stats = os.statvfs(path.parent)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < FULL_BELOW_BYTES


def _unavailable(error: sqlite3.Error, path: Path) -> Exception:
    """``error`` as :class:`StoreFull` or :class:`StoreUnavailable` when the database is
    unusable, else as it is."""
    code = _primary_code(error)
    if code == sqlite3.SQLITE_FULL or (code == sqlite3.SQLITE_IOERR and _out_of_room(path)):
        return StoreFull(f"sqlite: {error}")
    if code in _UNAVAILABLE_CODES:
        return StoreUnavailable(f"sqlite: {error}")
    return error


class SqliteStore:
    """The books table in SQLite. :meth:`open` before use, :meth:`close` at shutdown."""

    backend = "sqlite"

    def __init__(self, path: Path, synchronous: str = "NORMAL") -> None:
        self.path = path
        self.synchronous = synchronous
        self._writer: aiosqlite.Connection | None = None
        self._loop_writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._statements_on_thread = 0  # writes and checkpoints queued on or running in the thread
        self._writes_since_checkpoint = 0
        self._checkpoint: asyncio.Task[None] | None = None
        # The next write may restart the WAL (and sync its header): not on the loop.
        # False at open: the migration's transaction (PRAGMA user_version, on the
        # thread) has already written the WAL's first frame, header included.
        self._wal_may_restart = False

    async def open(self) -> None:
        writer = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await writer.execute(f"PRAGMA busy_timeout = {WRITER_BUSY_TIMEOUT_MS}")
            await writer.execute("PRAGMA journal_mode = WAL")
            await writer.execute(f"PRAGMA synchronous = {self.synchronous}")
            await _migrate(writer)
        except BaseException:
            await writer.close()
            raise
        if self.synchronous == "NORMAL":
            # Checkpoints only where _count_loop_write asks for them, each followed
            # by a write on the thread (an automatic one could come before a loop write).
            await writer.execute("PRAGMA wal_autocheckpoint = 0")
            loop_writer = sqlite3.connect(self.path, isolation_level=None)
            loop_writer.execute("PRAGMA busy_timeout = 0")
            loop_writer.execute("PRAGMA synchronous = NORMAL")
            loop_writer.execute("PRAGMA wal_autocheckpoint = 0")
            self._loop_writer = loop_writer
        reader = sqlite3.connect(self.path, isolation_level=None)
        reader.execute("PRAGMA busy_timeout = 1000")
        reader.execute("PRAGMA query_only = ON")
        self._writer, self._reader = writer, reader
        log.info(
            "database open",
            extra={
                "db.path": str(self.path),
                "db.writes": "event loop" if self._loop_writer else "writer thread",
            },
        )

    async def close(self) -> None:
        if self._checkpoint is not None:
            await asyncio.gather(self._checkpoint, return_exceptions=True)
            self._checkpoint = None
        for connection in (self._reader, self._loop_writer):
            if connection is not None:
                connection.close()
        self._reader = self._loop_writer = None
        if self._writer is not None:
            # The last connection to close checkpoints the WAL: on the thread.
            await self._writer.close()
            self._writer = None
            log.info("database closed", extra={"db.path": str(self.path)})

    @property
    def writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise RuntimeError("SqliteStore is not open")
        return self._writer

    @property
    def reader(self) -> sqlite3.Connection:
        if self._reader is None:
            raise RuntimeError("SqliteStore is not open")
        return self._reader

    async def ping(self) -> None:
        """Raises unless the database answers a query (through the writer's thread)."""
        await self.writer.execute_fetchall("SELECT 1")

    def _read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        try:
            return self.reader.execute(sql, params).fetchall()
        except sqlite3.Error as error:
            raise _unavailable(error, self.path) from error

    def get_json(self, book_id: int) -> bytes | None:
        rows = self._read(_SELECT_ONE, (book_id,))
        return rows[0][0].encode() if rows else None

    def list_json(self, limit: int, offset: int) -> bytes:
        rows = self._read(_SELECT_PAGE, (limit, offset))
        return ("[" + ",".join([row[0] for row in rows]) + "]").encode()

    async def _write(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Run one write statement (see the module docstring for where) and return its rows."""
        loop_writer = self._loop_writer
        if loop_writer is not None and not self._statements_on_thread and not self._wal_may_restart:
            try:
                rows = loop_writer.execute(sql, params).fetchall()
            except sqlite3.Error as error:
                if _primary_code(error) != sqlite3.SQLITE_BUSY:
                    raise _unavailable(error, self.path) from error
                log.info(
                    "database locked by another connection; the write waits on the writer thread",
                    extra={"db.path": str(self.path)},
                )
            else:
                self._count_loop_write()
                return rows
        self._statements_on_thread += 1
        try:
            rows = list(await self.writer.execute_fetchall(sql, params))
            self._wal_may_restart = False
            return rows
        except sqlite3.Error as error:
            raise _unavailable(error, self.path) from error
        finally:
            self._statements_on_thread -= 1

    def _count_loop_write(self) -> None:
        self._writes_since_checkpoint += 1
        if self._writes_since_checkpoint >= CHECKPOINT_EVERY_WRITES and self._checkpoint is None:
            self._writes_since_checkpoint = 0
            # Writes queue behind the checkpoint on the thread: a checkpoint that
            # races new frames never catches up, and the WAL would only grow.
            self._statements_on_thread += 1
            self._checkpoint = asyncio.get_running_loop().create_task(self._run_checkpoint())

    async def _run_checkpoint(self) -> None:
        try:
            await self.writer.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as error:  # retried after the next CHECKPOINT_EVERY_WRITES
            log.warning("checkpoint failed", extra={"error.message": str(error)})
        finally:
            self._wal_may_restart = True
            self._statements_on_thread -= 1
            self._checkpoint = None

    async def create_json(self, book: BookIn) -> tuple[int, bytes]:
        rows = await self._write(_INSERT, (book.title, book.author, book.description))
        book_id, body = rows[0]
        return int(book_id), str(body).encode()

    async def replace_json(self, book_id: int, book: BookIn) -> bytes | None:
        params = (book.title, book.author, book.description, book_id)
        return _first_json(await self._write(_REPLACE, params))

    async def patch_json(self, book_id: int, patch: BookPatch) -> bytes | None:
        set_description = patch.description is not msgspec.UNSET
        params = (
            _or_none(patch.title),
            _or_none(patch.author),
            set_description,
            _or_none(patch.description),
            book_id,
        )
        return _first_json(await self._write(_PATCH, params))

    async def delete(self, book_id: int) -> bool:
        return bool(await self._write(_DELETE, (book_id,)))


def _or_none(value: object) -> object:
    return None if value is msgspec.UNSET else value


def _first_json(rows: Iterable[Any]) -> bytes | None:
    found = list(rows)
    return str(found[0][0]).encode() if found else None


async def _migrate(writer: aiosqlite.Connection) -> None:
    """Bring the schema to the latest version, in one transaction (safe if raced)."""
    await writer.execute("BEGIN IMMEDIATE")
    try:
        (version,) = next(iter(await writer.execute_fetchall("PRAGMA user_version")))
        for index in range(int(version), len(MIGRATIONS)):
            for statement in MIGRATIONS[index].statements("sqlite"):
                await writer.execute(statement)
            log.info(
                "migrated",
                extra={"db.schema_version": index + 1, "db.migration": MIGRATIONS[index].name},
            )
        await writer.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        await writer.execute("COMMIT")
    except BaseException:
        await writer.execute("ROLLBACK")
        raise
