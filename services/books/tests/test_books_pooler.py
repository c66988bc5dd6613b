"""Books behind a transaction-mode pooler: a real PgBouncer (Debian's package) on loopback.

PgBouncer in ``pool_mode = transaction`` hands each transaction to whichever
server connection is free, as CloudNativePG's ``Pooler`` does. With its
default settings books cannot work there (a ``statement_timeout`` startup
parameter is refused); with ``BOOKS_DB_POOLER=transaction`` every route works
under concurrency (more books connections than server connections, so
transactions of one books connection land on different server connections),
and the statement timeout comes from the role.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from devstack.pgbouncer import LocalPgBouncer
from testkit.books import TestDatabases, locked_book, running_books
from testkit.process import ServiceProcess, free_port


@pytest.fixture
def pooled(databases: TestDatabases) -> Iterator[tuple[str, str]]:
    """(direct URL, URL through PgBouncer) of a fresh database."""
    direct = str(databases.new("postgresql"))
    base = Path(tempfile.mkdtemp(prefix="books-pgbouncer-"))
    bouncer = LocalPgBouncer(base, free_port(), databases.postgres.port, pool_size=2)
    try:
        bouncer.start()
        yield direct, bouncer.url(direct.rsplit("/", 1)[1])
    finally:
        bouncer.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_without_the_pooler_setting_pgbouncer_refuses_books_at_start_up(
    pooled: tuple[str, str],
) -> None:
    _, through = pooled
    env = {"PORT": str(free_port()), "BOOKS_DATABASE_URL": through}
    with ServiceProcess(["books"], env, name="books") as process:
        assert process.wait_exit(60) != 0
        assert "unsupported startup parameter" in process.output()


def test_every_route_works_through_pgbouncer_in_transaction_mode(
    pooled: tuple[str, str],
) -> None:
    _, through = pooled
    env = {"BOOKS_DB_POOLER": "transaction", "BOOKS_DB_POOL_SIZE": "8"}

    async def load(url: str) -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:

            async def one(n: int) -> list[int]:
                created = await http.post("/books", json={"title": f"t{n}", "author": "a"})
                book = created.json()
                path = f"/books/{book['id']}"
                answers = [
                    created,
                    await http.get(path),
                    await http.put(path, json={"title": f"u{n}", "author": "b"}),
                    await http.patch(path, json={"description": "d"}),
                    await http.get("/books", params={"limit": 5}),
                    await http.get(path),
                ]
                assert answers[-1].json()["title"] == f"u{n}"
                assert answers[-1].json()["description"] == "d"
                if n % 2:
                    answers.append(await http.delete(path))
                return [answer.status_code for answer in answers]

            results = await asyncio.gather(*(one(n) for n in range(64)))
            return sorted({status for statuses in results for status in statuses})

    with running_books(through, env=env) as books:
        assert asyncio.run(load(books.url)) == [200, 201, 204]
        assert httpx.get(f"{books.url}/readyz").status_code == 200
        log = books.process.output()
    assert '"db.pooler":"transaction"' in log.replace(" ", "")
    assert "prepared statement" not in log and "Traceback" not in log


async def test_behind_pgbouncer_the_statement_timeout_comes_from_the_role(
    pooled: tuple[str, str],
) -> None:
    direct, through = pooled
    database = direct.rsplit("/", 1)[1]
    holder = await asyncpg.connect(direct)
    try:
        # What components/books-postgres does at bootstrap for the role `books`.
        await holder.execute(
            f"ALTER ROLE postgres IN DATABASE {database} SET statement_timeout = 300"
        )
        env = {
            "BOOKS_DB_POOLER": "transaction",
            "BOOKS_DB_STATEMENT_TIMEOUT_S": "600",  # the client's bound stays out of the way
        }
        with running_books(through, env=env) as books:
            async with httpx.AsyncClient(base_url=books.url, timeout=60) as http:
                async with locked_book(http, holder) as book_id:
                    # Blocked on the row until the role's 300 ms cancel it on the server.
                    blocked = await http.put(
                        f"/books/{book_id}", json={"title": "N", "author": "A"}
                    )
                assert blocked.status_code == 503, blocked.text
                assert blocked.headers["retry-after"] == "1"
                after = await http.put(f"/books/{book_id}", json={"title": "N", "author": "A"})
                assert after.status_code == 200
            log = books.process.output()
    finally:
        await holder.close()
    assert "canceling statement due to statement timeout" in log
