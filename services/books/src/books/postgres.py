"""PostgreSQL store (for more than one books process): an asyncpg connection pool.

Every operation is one statement on a pooled connection in autocommit, so a
``201`` means the row is committed on the server (``synchronous_commit`` as the
server has it). Ids come from an identity column, so concurrent replicas never
hand out the same id.

Rows are read as plain columns (timestamps formatted by the server exactly as
SQLite formats them) and encoded by msgspec, whose JSON is byte for byte the
JSON SQLite's ``json_object`` writes (same field order, no spaces, same string
escapes): a client cannot tell the backends apart.

The server going away, refusing connections, or a statement passing
``statement_timeout`` raise :class:`StoreUnavailable` (HTTP 503 with
``Retry-After``); the pool reconnects on its own when the server is back.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import msgspec

from books.migrations import ADVISORY_LOCK_KEY, MIGRATIONS, POSTGRESQL_VERSION_TABLE
from books.models import Book, BookIn, BookPatch
from books.settings import URL_SETTING, Settings, redact
from books.store import StoreUnavailable

log = logging.getLogger("books.postgres")

T = TypeVar("T")

_TIMESTAMP = '\'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"\''
_COLUMNS = (
    "id, title, author, description,"
    f" to_char(created_at AT TIME ZONE 'UTC', {_TIMESTAMP}),"
    f" to_char(updated_at AT TIME ZONE 'UTC', {_TIMESTAMP})"
)
_SELECT_ONE = f"SELECT {_COLUMNS} FROM books WHERE id = $1"
_SELECT_PAGE = f"SELECT {_COLUMNS} FROM books ORDER BY id LIMIT $1 OFFSET $2"
_INSERT = (
    "INSERT INTO books (title, author, description, created_at, updated_at)"
    f" VALUES ($1, $2, $3, now(), now()) RETURNING {_COLUMNS}"
)
_REPLACE = (
    "UPDATE books SET title = $1, author = $2, description = $3, updated_at = now()"
    f" WHERE id = $4 RETURNING {_COLUMNS}"
)
_PATCH = (
    "UPDATE books SET title = coalesce($1, title), author = coalesce($2, author),"
    " description = CASE WHEN $3 THEN $4 ELSE description END,"
    f" updated_at = now() WHERE id = $5 RETURNING {_COLUMNS}"
)
_DELETE = "DELETE FROM books WHERE id = $1 RETURNING id"

# SQLSTATE classes that mean "the database is not usable right now", not "bad query":
# 08 connection exception, 53 insufficient resources, 57 operator intervention
# (admin shutdown, cannot connect now, statement_timeout's query_canceled), 58 system error.
_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")

_encode = msgspec.json.Encoder().encode


def unavailable_cause(error: BaseException) -> str | None:
    """Why ``error`` means the database cannot be used now; None for any other error."""
    if isinstance(error, asyncpg.PostgresError):
        state = str(getattr(error, "sqlstate", "") or "")
        return f"{type(error).__name__}: {error}" if state[:2] in _UNAVAILABLE_CLASSES else None
    if isinstance(error, asyncpg.InterfaceError | OSError | TimeoutError):
        return f"{type(error).__name__}: {error}".rstrip(": ")
    return None


def _book(row: Any) -> Book:
    return Book(row[0], row[1], row[2], row[3], row[4], row[5])


class PostgresStore:
    """The books table in PostgreSQL. :meth:`open` before use, :meth:`close` at shutdown."""

    backend = "postgresql"

    def __init__(self, settings: Settings) -> None:
        assert settings.postgres_url is not None
        self.url = settings.postgres_url
        self.password = settings.postgres_password
        self.pool_size = settings.pool_size
        self.statement_timeout_s = settings.statement_timeout_s
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        timeout_ms = max(1, round(self.statement_timeout_s * 1000))
        self._pool = await asyncpg.create_pool(
            self.url,
            password=self.password,
            min_size=1,
            max_size=self.pool_size,
            # Connecting and each call are bounded too: a server that stops
            # answering gives a 503, not a request hanging on the pool.
            timeout=self.statement_timeout_s,
            command_timeout=self.statement_timeout_s + 1,
            server_settings={"statement_timeout": str(timeout_ms), "application_name": "books"},
            # asyncpg's default reset runs one more query (RESET ALL, UNLISTEN *,
            # ...) per release: books never changes session state (no SET, no
            # LISTEN, only transaction-level locks), so an open transaction's
            # rollback, which asyncpg still does, is all a release needs.
            reset=_keep_session,
        )
        try:
            await self._migrate()
        except BaseException:
            await self._pool.close()
            self._pool = None
            raise
        log.info(
            "database open",
            extra={
                "db.system": "postgresql",
                "db.url": redact(self.url),
                "db.pool_size": self.pool_size,
            },
        )

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), self.statement_timeout_s + 1)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pool.terminate()
            log.info("database closed", extra={"db.system": "postgresql"})

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("PostgresStore is not open")
        return self._pool

    async def _call(self, run: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
        try:
            return await run(self.pool)
        except Exception as error:
            cause = unavailable_cause(error)
            if cause is None:
                raise
            raise StoreUnavailable(cause) from error

    async def ping(self) -> None:
        await self._call(lambda pool: pool.fetchval("SELECT 1"))

    async def get_json(self, book_id: int) -> bytes | None:
        row = await self._call(lambda pool: pool.fetchrow(_SELECT_ONE, book_id))
        return None if row is None else _encode(_book(row))

    async def list_json(self, limit: int, offset: int) -> bytes:
        rows = await self._call(lambda pool: pool.fetch(_SELECT_PAGE, limit, offset))
        return _encode([_book(row) for row in rows])

    async def create_json(self, book: BookIn) -> tuple[int, bytes]:
        row = await self._call(
            lambda pool: pool.fetchrow(_INSERT, book.title, book.author, book.description)
        )
        return int(row[0]), _encode(_book(row))

    async def replace_json(self, book_id: int, book: BookIn) -> bytes | None:
        row = await self._call(
            lambda pool: pool.fetchrow(_REPLACE, book.title, book.author, book.description, book_id)
        )
        return None if row is None else _encode(_book(row))

    async def patch_json(self, book_id: int, patch: BookPatch) -> bytes | None:
        params = (
            _or_none(patch.title),
            _or_none(patch.author),
            patch.description is not msgspec.UNSET,
            _or_none(patch.description),
            book_id,
        )
        row = await self._call(lambda pool: pool.fetchrow(_PATCH, *params))
        return None if row is None else _encode(_book(row))

    async def delete(self, book_id: int) -> bool:
        found = await self._call(lambda pool: pool.fetchval(_DELETE, book_id))
        return found is not None

    async def _migrate(self) -> None:
        """Bring the schema to the latest version under an advisory lock (once, if raced)."""
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", ADVISORY_LOCK_KEY)
            await connection.execute(POSTGRESQL_VERSION_TABLE)
            version = await connection.fetchval(
                "SELECT coalesce(max(version), 0) FROM schema_migrations"
            )
            for index in range(int(version), len(MIGRATIONS)):
                migration = MIGRATIONS[index]
                for statement in migration.statements("postgresql"):
                    await connection.execute(statement)
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    index + 1,
                    migration.name,
                )
                log.info(
                    "migrated",
                    extra={"db.schema_version": index + 1, "db.migration": migration.name},
                )


async def _keep_session(_: asyncpg.Connection) -> None:
    return None


def _or_none(value: object) -> object:
    return None if value is msgspec.UNSET else value


async def check_connection(settings: Settings) -> None:
    """Connect once; a refused connection, bad credentials or a missing database is a bad setting.

    Raises :class:`~servicekit.settings.SettingsError` naming ``BOOKS_DATABASE_URL``
    and the cause, so ``main()`` exits with one line and status 2.
    """
    from servicekit.settings import SettingsError

    assert settings.postgres_url is not None
    shown = redact(settings.postgres_url)
    try:
        connection = await asyncpg.connect(
            settings.postgres_url,
            password=settings.postgres_password,
            timeout=max(settings.statement_timeout_s, 5.0),
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        cause = str(error).splitlines()[0] if str(error) else type(error).__name__
        if isinstance(error, TimeoutError):
            cause = "timed out connecting"
        elif isinstance(error, OSError) and error.errno:
            cause = os.strerror(error.errno)  # "Connection refused", not asyncio's wording
        raise SettingsError(
            URL_SETTING, shown, f"a reachable PostgreSQL database ({cause})"
        ) from None
    except ValueError as error:  # asyncpg could not parse the URL's options
        raise SettingsError(URL_SETTING, shown, f"a valid PostgreSQL URL ({error})") from None
    await connection.close()
