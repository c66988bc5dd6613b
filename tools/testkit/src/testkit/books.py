"""Run the books service as a real process, for this service's tests and others'.

    with running_books(tmp_path / "books.db") as books:          # SQLite file
        httpx.get(f"{books.url}/books")
    with running_books("postgresql://postgres@127.0.0.1:5432/db") as books:  # PostgreSQL
        ...

Other services' tests (the text-to-speech fronts) use the same helper to get a
real books API on a free loopback port. :class:`TestDatabases` hands out fresh
databases of either backend (PostgreSQL: one local server, started on first use).
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from testkit.process import ServiceProcess, free_port

if TYPE_CHECKING:
    import asyncpg
    import httpx
    from devstack.postgres import LocalPostgres

BACKENDS = ("sqlite", "postgresql")

Database = Path | str
"""A SQLite file path, or a ``postgresql://`` URL."""


@dataclass
class BooksServer:
    """A started books process and where it listens."""

    process: ServiceProcess
    port: int
    database: Database

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_again(self) -> None:
        """Start a fresh process on the same port and database (after kill/terminate)."""
        self.process.stop()
        self.process = _process(self.database, self.port, self.process.env).start()
        self.process.wait_http_ready(f"{self.url}/readyz")


def database_env(database: Database) -> dict[str, str]:
    """The books settings that select ``database``."""
    if isinstance(database, Path):
        return {"BOOKS_DB_PATH": str(database)}
    return {"BOOKS_DATABASE_URL": database}


def _process(database: Database, port: int, env: Mapping[str, str] | None) -> ServiceProcess:
    environ = {"HOST": "127.0.0.1", "PORT": str(port), **database_env(database)}
    return ServiceProcess(["books"], {**(env or {}), **environ}, name="books")


@contextlib.contextmanager
def running_books(
    database: Database, *, port: int | None = None, env: Mapping[str, str] | None = None
) -> Iterator[BooksServer]:
    """Start ``books`` on ``database`` and a free port; wait for /readyz; stop it after."""
    chosen = port or free_port()
    server = BooksServer(_process(database, chosen, env).start(), chosen, database)
    try:
        server.process.wait_http_ready(f"{server.url}/readyz")
        yield server
    finally:
        server.process.stop()


class TestDatabases:
    """Fresh, empty databases of either backend, for a test session.

    SQLite: a new file in a temporary directory. PostgreSQL: a new database on
    one local server (``devstack.postgres``, fsync off), started on first use
    and stopped by :meth:`close`.
    """

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="books-databases-"))
        self._count = itertools.count(1)
        self._postgres: LocalPostgres | None = None

    @property
    def postgres(self) -> LocalPostgres:
        if self._postgres is None:
            from devstack.postgres import LocalPostgres

            # Its own directory under /tmp: when root, the server runs as an
            # unprivileged user that must be able to reach it.
            base = Path(tempfile.mkdtemp(prefix="books-postgres-"))
            self._postgres = LocalPostgres(base, free_port(), durable=False).start()
        return self._postgres

    def new(self, backend: str) -> Database:
        n = next(self._count)
        if backend == "sqlite":
            return self._dir / f"books{n}.db"
        if backend == "postgresql":
            return self.postgres.create_database(f"books{n}")
        raise ValueError(f"unknown backend {backend!r}: one of {BACKENDS}")

    def close(self) -> None:
        if self._postgres is not None:
            self._postgres.stop()
            shutil.rmtree(self._postgres.base_dir, ignore_errors=True)
            self._postgres = None
        shutil.rmtree(self._dir, ignore_errors=True)


@contextlib.asynccontextmanager
async def locked_book(http: httpx.AsyncClient, holder: asyncpg.Connection) -> AsyncIterator[int]:
    """A new book, created through ``http``, whose row ``holder`` keeps locked until the
    block ends (``SELECT ... FOR UPDATE`` in an open transaction of the test's own
    PostgreSQL connection): a write to the book waits on the lock meanwhile."""
    created = await http.post("/books", json={"title": "T", "author": "A"})
    assert created.status_code == 201, created.text
    book_id: int = created.json()["id"]
    async with holder.transaction():
        await holder.execute("SELECT 1 FROM books WHERE id = $1 FOR UPDATE", book_id)
        yield book_id
