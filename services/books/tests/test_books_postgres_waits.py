"""Books on PostgreSQL: every wait is bounded by its own setting.

- a request waiting for a pooled connection gets a 503 after the acquire
  timeout, not after the statement timeout of the request holding it, and
  ``/readyz`` answers within its readiness timeout meanwhile;
- start-up's migration waits for the advisory lock as long as its own lock
  timeout allows, not the (much shorter) statement timeout of requests, and
  says so in one line when it gives up.

No time is asserted: "bounded" is shown by an answer arriving while the
statement that holds the only connection is still blocked (on a row lock the
test holds), or by a start-up that outlives several statement timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from books.migrations import ADVISORY_LOCK_KEY
from testkit.books import TestDatabases, locked_book, running_books
from testkit.process import ServiceProcess, free_port


async def wait_for_books_waiting_on_lock(url: str, older_than_s: float = 0.0) -> None:
    """Until a books backend has waited for a lock ``older_than_s`` (pg_stat_activity says)."""
    probe = await asyncpg.connect(url)
    try:
        while True:
            waiting = await probe.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'books'"
                " AND wait_event_type = 'Lock'"
                " AND now() - query_start > make_interval(secs => $1)",
                older_than_s,
            )
            if waiting:
                return
            await asyncio.sleep(0.05)
    finally:
        await probe.close()


@contextlib.asynccontextmanager
async def started_behind_the_migration_lock(
    lock_holder: asyncpg.Connection, process: ServiceProcess
) -> AsyncIterator[None]:
    """``process`` started while the test holds books' migration lock (released on exit)."""
    async with lock_holder.transaction():
        await lock_holder.execute("SELECT pg_advisory_xact_lock($1)", ADVISORY_LOCK_KEY)
        process.start()
        yield


@pytest.fixture
async def holder(databases: TestDatabases) -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    url = str(databases.new("postgresql"))
    connection = await asyncpg.connect(url)
    try:
        yield url, connection
    finally:
        await connection.close()


async def test_a_saturated_pool_answers_503_after_the_acquire_timeout_and_readyz_in_time(
    holder: tuple[str, asyncpg.Connection],
) -> None:
    url, lock_holder = holder
    env = {
        "BOOKS_DB_POOL_SIZE": "1",
        "BOOKS_DB_STATEMENT_TIMEOUT_S": "120",  # the blocked PUT holds the pool this long
        "BOOKS_DB_ACQUIRE_TIMEOUT_S": "0.3",
        "BOOKS_DB_READY_TIMEOUT_S": "0.3",
    }
    with running_books(url, env=env) as books:
        async with httpx.AsyncClient(base_url=books.url, timeout=60) as http:
            # The test holds the row: books' PUT blocks on it, holding the only connection.
            async with locked_book(http, lock_holder) as book_id:
                put = asyncio.create_task(
                    http.put(f"/books/{book_id}", json={"title": "New", "author": "A"})
                )
                await wait_for_books_waiting_on_lock(url)

                waiting = await http.get(f"/books/{book_id}")
                ready = await http.get("/readyz")
                assert not put.done()  # answered while the PUT still holds the connection
                assert waiting.status_code == 503, waiting.text
                assert waiting.headers["retry-after"] == "1"
                assert waiting.json()["error"] == "database_unavailable"
                assert ready.status_code == 503, ready.text
                assert "within 0.3 s" in ready.json()["detail"]
            # The row is free: the PUT completes, and the pool serves again.
            assert (await put).status_code == 200
            assert (await http.get(f"/books/{book_id}")).json()["title"] == "New"
            assert (await http.get("/readyz")).status_code == 200
        log = books.process.output()
    assert "no database connection free within 0.3 s (pool of 1)" in log
    assert "Traceback" not in log


async def test_migration_waits_for_its_lock_past_the_statement_timeout(
    holder: tuple[str, asyncpg.Connection],
) -> None:
    url, lock_holder = holder
    port = free_port()
    env = {
        "PORT": str(port),
        "BOOKS_DATABASE_URL": url,
        "BOOKS_DB_STATEMENT_TIMEOUT_S": "0.2",
        "BOOKS_DB_MIGRATION_LOCK_TIMEOUT_S": "600",
    }
    process = ServiceProcess(["books"], env, name="books")
    try:
        async with started_behind_the_migration_lock(lock_holder, process):
            # Five statement timeouts into the wait: before the fix it had failed at the first.
            await asyncio.wait_for(wait_for_books_waiting_on_lock(url, older_than_s=1.0), 60)
            assert process.is_running(), process.output()
        await asyncio.to_thread(process.wait_http_ready, f"http://127.0.0.1:{port}/readyz")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            created = await http.post("/books", json={"title": "T", "author": "A"})
        assert created.status_code == 201
        assert "migrated" in process.output()
    finally:
        process.stop()


async def test_migration_lock_not_had_in_time_stops_start_up_with_one_clear_line(
    holder: tuple[str, asyncpg.Connection],
) -> None:
    url, lock_holder = holder
    env = {
        "PORT": str(free_port()),
        "BOOKS_DATABASE_URL": url,
        "BOOKS_DB_MIGRATION_LOCK_TIMEOUT_S": "0.5",
    }
    process = ServiceProcess(["books"], env, name="books")
    try:
        async with started_behind_the_migration_lock(lock_holder, process):
            status = await asyncio.to_thread(process.wait_exit, 60)
            assert status != 0
        output = process.output()
    finally:
        process.stop()
    lines = [line for line in output.splitlines() if "migration lock not had" in line]
    assert len(lines) == 1, output
    assert "BOOKS_DB_MIGRATION_LOCK_TIMEOUT_S (0.5 s)" in lines[0]
