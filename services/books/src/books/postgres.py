"""PostgreSQL store (for more than one books process): asyncpg connections in a small pool.

Every operation is one statement on a pooled connection in autocommit, so a
``201`` means the row is committed on the server (``synchronous_commit`` as the
server has it). Ids come from an identity column, so concurrent replicas never
hand out the same id.

Each row keeps its API JSON in a stored generated column (``doc``, schema 3),
byte for byte the JSON SQLite's ``json_object`` writes (same field order, no
spaces, same string escapes, same timestamps): a client cannot tell the
backends apart. A read is text from the server sent on as it is (a page of
books: its rows' texts joined).

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
from books.models import BookIn, BookPatch
from books.pgpool import Pool
from books.settings import URL_SETTING, Settings, redact
from books.store import StoreFull, StoreUnavailable

log = logging.getLogger("books.postgres")

T = TypeVar("T")

# Each row keeps its API JSON in the stored generated column ``doc`` (schema 3,
# :data:`books.migrations.BOOK_JSON_POSTGRESQL_FUNCTION`), as on SQLite.
_SELECT_ONE = "SELECT doc FROM books WHERE id = $1"
_SELECT_PAGE = "SELECT doc FROM books ORDER BY id LIMIT $1 OFFSET $2"
_INSERT = (
    "INSERT INTO books (title, author, description, created_at, updated_at)"
    " VALUES ($1, $2, $3, now(), now()) RETURNING id, doc"
)
_REPLACE = (
    "UPDATE books SET title = $1, author = $2, description = $3, updated_at = now()"
    " WHERE id = $4 RETURNING doc"
)
_PATCH = (
    "UPDATE books SET title = coalesce($1, title), author = coalesce($2, author),"
    " description = CASE WHEN $3 THEN $4 ELSE description END,"
    " updated_at = now() WHERE id = $5 RETURNING doc"
)
_DELETE = "DELETE FROM books WHERE id = $1 RETURNING id"

# SQLSTATE classes that mean "the database is not usable right now", not "bad query":
# 08 connection exception, 53 insufficient resources, 57 operator intervention
# (admin shutdown, cannot connect now, statement_timeout's query_canceled), 58 system error.
_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")


def unavailable_cause(error: BaseException) -> str | None:
    """Why ``error`` means the database cannot be used now; None for any other error."""
    if isinstance(error, asyncpg.PostgresError):
        state = str(getattr(error, "sqlstate", "") or "")
        return f"{type(error).__name__}: {error}" if state[:2] in _UNAVAILABLE_CLASSES else None
    if isinstance(error, asyncpg.InterfaceError | OSError | TimeoutError):
        return f"{type(error).__name__}: {error}".rstrip(": ")
    return None


class PostgresStore:
    """The books table in PostgreSQL. :meth:`open` before use, :meth:`close` at shutdown."""

    backend = "postgresql"

    def __init__(self, settings: Settings) -> None:
        assert settings.postgres_url is not None
        self.url = settings.postgres_url
        self.password = settings.postgres_password
        self.pool_size = settings.pool_size
        self.statement_timeout_s = settings.statement_timeout_s
        self.acquire_timeout_s = settings.acquire_timeout_s
        self.ready_timeout_s = settings.ready_timeout_s
        self.migration_lock_timeout_s = settings.migration_lock_timeout_s
        self.pooler = settings.pooler
        self._pool: Pool | None = None
        self._ping_tasks: set[asyncio.Task[None]] = set()

    def _connection_options(self) -> dict[str, Any]:
        """What every connection (pooled or the migration's) is opened with."""
        server_settings = {"application_name": "books"}
        options: dict[str, Any] = {"password": self.password, "server_settings": server_settings}
        if self.pooler == "transaction":
            # A transaction-mode pooler hands each transaction to any server
            # connection: named prepared statements would be missing or clash
            # (asyncpg issues 198, 1058), and PgBouncer refuses unknown startup
            # parameters such as statement_timeout. The server-side bound comes
            # from the role (ALTER ROLE ... SET statement_timeout), the client's
            # from command_timeout (asyncpg cancels the statement past it).
            options["statement_cache_size"] = 0
        else:
            timeout_ms = max(1, round(self.statement_timeout_s * 1000))
            server_settings["statement_timeout"] = str(timeout_ms)
        return options

    async def _connect(self) -> asyncpg.Connection:
        """One pooled connection. Connecting is part of waiting for a connection: bounded
        by the acquire timeout. Each statement: by statement_timeout on the server, and
        on the client (a server that stops answering)."""
        client_margin = 0.0 if self.pooler == "transaction" else 1.0
        return await asyncpg.connect(
            self.url,
            timeout=self.acquire_timeout_s,
            command_timeout=self.statement_timeout_s + client_margin,
            **self._connection_options(),
        )

    async def open(self) -> None:
        await self._migrate()
        pool = Pool(self._connect, self.pool_size)
        await pool.open()
        self._pool = pool
        log.info(
            "database open",
            extra={
                "db.system": "postgresql",
                "db.url": redact(self.url),
                "db.pool_size": self.pool_size,
                "db.pooler": self.pooler,
            },
        )

    async def close(self) -> None:
        for task in list(self._ping_tasks):
            task.cancel()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close(self.statement_timeout_s + 1)
            log.info("database closed", extra={"db.system": "postgresql"})

    @property
    def pool(self) -> Pool:
        if self._pool is None:
            raise RuntimeError("PostgresStore is not open")
        return self._pool

    async def _call(self, run: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """``run`` on a pooled connection: the wait for one is bounded by the acquire timeout,
        the statement by the statement timeout; past either, :class:`StoreUnavailable`."""
        pool = self.pool
        try:
            connection = await pool.acquire(self.acquire_timeout_s)
        except TimeoutError:
            raise StoreUnavailable(
                f"no database connection free within {self.acquire_timeout_s:g} s"
                f" (pool of {self.pool_size})"
            ) from None
        except Exception as error:
            raise _translated(error) from error
        try:
            result = await run(connection)
        except BaseException as error:
            pool.discard(connection)  # its protocol state is unknown: never reused
            if isinstance(error, Exception):
                raise _translated(error) from error
            raise
        pool.release(connection)
        return result

    async def ping(self) -> None:
        """``SELECT 1`` answered within the readiness timeout, else :class:`StoreUnavailable`.

        The probe gets its answer in time even when every pooled connection is
        busy or the server stops answering: the check goes on in the background
        (bounded by the acquire and statement timeouts) and the probe is told 503.
        """
        task = asyncio.get_running_loop().create_task(
            self._call(lambda db: db.fetchval("SELECT 1"))
        )
        self._ping_tasks.add(task)
        task.add_done_callback(_forget_ping)
        task.add_done_callback(self._ping_tasks.discard)
        done, _ = await asyncio.wait({task}, timeout=self.ready_timeout_s)
        if not done:
            raise StoreUnavailable(f"no answer to SELECT 1 within {self.ready_timeout_s:g} s")
        task.result()

    async def get_json(self, book_id: int) -> bytes | None:
        doc = await self._call(lambda db: db.fetchval(_SELECT_ONE, book_id))
        return None if doc is None else str(doc).encode()

    async def list_json(self, limit: int, offset: int) -> bytes:
        rows = await self._call(lambda db: db.fetch(_SELECT_PAGE, limit, offset))
        # Joined here: string_agg on the server cost twice the server's CPU.
        return ("[" + ",".join([row[0] for row in rows]) + "]").encode()

    async def create_json(self, book: BookIn) -> tuple[int, bytes]:
        row = await self._call(
            lambda db: db.fetchrow(_INSERT, book.title, book.author, book.description)
        )
        return int(row[0]), str(row[1]).encode()

    async def replace_json(self, book_id: int, book: BookIn) -> bytes | None:
        row = await self._call(
            lambda db: db.fetchval(_REPLACE, book.title, book.author, book.description, book_id)
        )
        return None if row is None else str(row).encode()

    async def patch_json(self, book_id: int, patch: BookPatch) -> bytes | None:
        params = (
            _or_none(patch.title),
            _or_none(patch.author),
            patch.description is not msgspec.UNSET,
            _or_none(patch.description),
            book_id,
        )
        doc = await self._call(lambda db: db.fetchval(_PATCH, *params))
        return None if doc is None else str(doc).encode()

    async def delete(self, book_id: int) -> bool:
        found = await self._call(lambda db: db.fetchval(_DELETE, book_id))
        return found is not None

    async def _migrate(self) -> None:
        """Bring the schema to the latest version under an advisory lock (once, if raced).

        On a connection of its own, opened for it: no client-side command
        timeout, and inside the transaction no ``statement_timeout`` (a long
        step, or the wait for a replica migrating first, is not a slow
        request) but a ``lock_timeout`` of its own, the migration lock
        setting. Past it start-up stops with one line saying so.
        """
        connection = await asyncpg.connect(
            self.url, timeout=max(self.acquire_timeout_s, 5.0), **self._connection_options()
        )
        try:
            async with connection.transaction():
                lock_ms = max(1, round(self.migration_lock_timeout_s * 1000))
                await connection.execute("SET LOCAL statement_timeout = 0")
                await connection.execute(f"SET LOCAL lock_timeout = {lock_ms}")
                try:
                    await connection.execute("SELECT pg_advisory_xact_lock($1)", ADVISORY_LOCK_KEY)
                except asyncpg.LockNotAvailableError:
                    log.error(
                        "migration lock not had within BOOKS_DB_MIGRATION_LOCK_TIMEOUT_S"
                        f" ({self.migration_lock_timeout_s:g} s): another books process is"
                        " migrating or holds it; start-up stops",
                        extra={"db.url": redact(self.url)},
                    )
                    raise
                await self._migrate_locked(connection)
        finally:
            await connection.close()

    async def _migrate_locked(self, connection: asyncpg.Connection) -> None:
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


def _translated(error: Exception) -> Exception:
    """``error`` as the store's exception when the database is full or unusable, else itself."""
    if isinstance(error, asyncpg.DiskFullError):  # SQLSTATE 53100: nothing was written
        return StoreFull(f"{type(error).__name__}: {error}")
    cause = unavailable_cause(error)
    return error if cause is None else StoreUnavailable(cause)


def _forget_ping(task: asyncio.Task[None]) -> None:
    """A readiness check that outlived its probe: its outcome is no longer awaited."""
    if not task.cancelled():
        task.exception()


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
