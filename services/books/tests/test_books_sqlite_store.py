"""The SQLite store's own rules: where writes run, the WAL, the schema migration.

Writes run on the event loop and go to the writer thread while another
connection holds the write lock (see :mod:`books.sqlite`). These tests
hold that lock from a ``sqlite3`` connection of their own, as a second process
or a shell would, and drive the real books process over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from books.migrations import MIGRATIONS
from books.sqlite import CHECKPOINT_EVERY_WRITES, WRITER_BUSY_TIMEOUT_MS
from testkit.books import running_books
from testkit.devstack import wait_for_output
from testkit.process import ServiceProcess, console_script, free_port

PAGE_BYTES = 4096


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "books.db"


@pytest.fixture
def write_lock(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A connection of the test's, to take the database's write lock with."""
    connection = sqlite3.connect(db_path, isolation_level=None, timeout=30)
    try:
        yield connection
    finally:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        connection.close()


def test_write_waits_for_another_connections_lock_then_succeeds(
    db_path: Path, write_lock: sqlite3.Connection
) -> None:
    with running_books(db_path) as server, ThreadPoolExecutor(1) as pool:
        write_lock.execute("BEGIN IMMEDIATE")
        write_lock.execute(
            "INSERT INTO books (title, author, created_at, updated_at)"
            " VALUES ('Theirs', 'A', 'c', 'u')"
        )
        pending = pool.submit(
            httpx.post, f"{server.url}/books", json={"title": "Ours", "author": "B"}, timeout=30
        )
        wait_for_output(server.process, "the write waits on the writer thread", timeout=30)
        assert not pending.done()  # it waits while the lock is held
        write_lock.execute("COMMIT")
        response = pending.result()
        assert response.status_code == 201, response.text
        assert response.json()["id"] == 2  # after the committed 'Theirs'
        titles = [book["title"] for book in httpx.get(f"{server.url}/books").json()]
        assert titles == ["Theirs", "Ours"]
        # Back on the loop once the lock is gone: the next write does not wait.
        assert (
            httpx.post(f"{server.url}/books", json={"title": "Next", "author": "C"}).status_code
            == 201
        )


def test_lock_held_past_the_wait_is_503_with_retry_after_not_500(
    db_path: Path, write_lock: sqlite3.Connection
) -> None:
    with running_books(db_path) as server:
        created = httpx.post(f"{server.url}/books", json={"title": "T", "author": "A"}).json()
        write_lock.execute("BEGIN IMMEDIATE")
        try:
            timeout = WRITER_BUSY_TIMEOUT_MS / 1000 + 30
            for method, path, body in (
                ("POST", "/books", {"title": "T2", "author": "A"}),
                ("DELETE", f"/books/{created['id']}", None),
            ):
                response = httpx.request(method, f"{server.url}{path}", json=body, timeout=timeout)
                assert response.status_code == 503, (method, response.text)
                assert response.headers["retry-after"] == "1"
                assert response.json()["error"] == "database_unavailable"
            # Reads do not need the write lock (WAL): still answered.
            assert httpx.get(f"{server.url}/books/{created['id']}").status_code == 200
        finally:
            write_lock.execute("ROLLBACK")
        after = httpx.post(f"{server.url}/books", json={"title": "After", "author": "A"})
        assert after.status_code == 201, after.text
        log = server.process.output()
    assert '"database unavailable"' in log
    assert "database is locked" in log


def test_wal_stays_bounded_under_concurrent_writes(db_path: Path) -> None:
    writes = 4 * CHECKPOINT_EVERY_WRITES

    async def post_all(url: str) -> list[int]:
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
            queue = iter(range(writes))

            async def worker() -> list[int]:
                statuses = []
                for i in queue:
                    response = await http.post("/books", json={"title": f"b{i}", "author": "a"})
                    statuses.append(response.status_code)
                return statuses

            results = await asyncio.gather(*(worker() for _ in range(16)))
            return [status for statuses in results for status in statuses]

    with running_books(db_path) as server:
        statuses = asyncio.run(post_all(server.url))
        assert statuses == [201] * writes
        wal_bytes = Path(f"{db_path}-wal").stat().st_size
        listed = httpx.get(f"{server.url}/books", params={"limit": 1, "offset": writes - 1}).json()
    assert [book["title"] for book in listed] != []
    # A checkpoint every CHECKPOINT_EVERY_WRITES writes (about 2 pages each):
    # the WAL restarts instead of growing with every write.
    bound = 3 * CHECKPOINT_EVERY_WRITES * 2 * PAGE_BYTES
    assert wal_bytes < bound, f"WAL is {wal_bytes} bytes after {writes} writes (bound {bound})"


def test_schema_1_database_migrates_keeping_rows_ids_and_never_reused_ids(db_path: Path) -> None:
    old = sqlite3.connect(db_path, isolation_level=None)
    old.execute("PRAGMA journal_mode = WAL")
    statements = MIGRATIONS[0].statements("sqlite")
    for statement in statements:
        old.execute(statement)
    old.execute("PRAGMA user_version = 1")
    for i in range(1, 6):
        old.execute(
            "INSERT INTO books (title, author, description, created_at, updated_at)"
            " VALUES (?, ?, ?, '2026-01-0' || ? || 'T00:00:00.000Z', '2026-02-01T00:00:00.000Z')",
            (f"Title {i}", f"Author {i}", None if i % 2 else f"d{i}", str(i)),
        )
    old.execute("DELETE FROM books WHERE id = 5")  # the highest id handed out is gone
    old.close()

    with running_books(db_path) as server:
        listed = httpx.get(f"{server.url}/books").json()
        created = httpx.post(f"{server.url}/books", json={"title": "New", "author": "N"})
        log = server.process.output()

    assert [book["id"] for book in listed] == [1, 2, 3, 4]
    assert listed[1] == {
        "id": 2,
        "title": "Title 2",
        "author": "Author 2",
        "description": "d2",
        "created_at": "2026-01-02T00:00:00.000Z",
        "updated_at": "2026-02-01T00:00:00.000Z",
    }
    assert created.status_code == 201 and created.json()["id"] == 6
    assert '"db.schema_version":2' in log.replace(" ", "")
    check = sqlite3.connect(db_path)
    try:
        assert check.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        names = {row[0] for row in check.execute("SELECT name FROM sqlite_master")}
        assert "books_v2" not in names
    finally:
        check.close()


@pytest.mark.parametrize(
    ("synchronous", "where"), [("NORMAL", "event loop"), ("FULL", "writer thread")]
)
def test_writes_run_where_synchronous_allows_and_every_write_works(
    db_path: Path, synchronous: str, where: str
) -> None:
    env = {"BOOKS_DB_SYNCHRONOUS": synchronous}
    with running_books(db_path, env=env) as server, httpx.Client(base_url=server.url) as http:
        created = http.post("/books", json={"title": "T", "author": "A"})
        assert created.status_code == 201, created.text
        book_id = created.json()["id"]
        replaced = http.put(f"/books/{book_id}", json={"title": "T2", "author": "A2"})
        assert replaced.status_code == 200 and replaced.json()["title"] == "T2"
        patched = http.patch(f"/books/{book_id}", json={"description": "d"})
        assert patched.status_code == 200 and patched.json()["description"] == "d"
        assert http.get(f"/books/{book_id}").json() == patched.json()
        assert http.delete(f"/books/{book_id}").status_code == 204
        assert http.get(f"/books/{book_id}").status_code == 404
        log = server.process.output()
    opened = [
        record
        for record in map(json.loads, log.splitlines())
        if record.get("message") == "database open"
    ]
    assert [record["db.writes"] for record in opened] == [where], log


@pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])
def test_no_room_for_a_write_is_507_and_nothing_is_half_written(
    db_path: Path, synchronous: str
) -> None:
    # RLIMIT_FSIZE of 128 KiB: no file of the database can grow past it, as on a full disk.
    port = free_port()
    env = {
        "PORT": str(port),
        "BOOKS_DB_PATH": str(db_path),
        "BOOKS_DB_SYNCHRONOUS": synchronous,
        "BOOKS_ACCESS_LOG": "false",  # the log file is under the limit too
    }
    command = ["prlimit", f"--fsize={128 * 1024}", console_script("books")]
    acknowledged: dict[int, object] = {}
    with ServiceProcess(command, env, name="books") as books:
        books.wait_http_ready(f"http://127.0.0.1:{port}/readyz")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            refused = None
            for i in range(200):  # 4 KiB each: the limit is met well before the last
                body = {"title": f"b{i}", "author": "a", "description": "x" * 4000}
                response = http.post("/books", json=body)
                if response.status_code != 201:
                    refused = response
                    break
                acknowledged[response.json()["id"]] = response.json()
            assert refused is not None and acknowledged
            assert refused.status_code == 507, refused.text
            assert refused.json() == {
                "error": "storage_full",
                "detail": "no room left to store the book",
            }
            # Reads go on, and show exactly the acknowledged books.
            listed = http.get("/books", params={"limit": 1000})
            assert listed.status_code == 200
            assert {book["id"]: book for book in listed.json()} == acknowledged
        log = books.output()
    assert "Traceback" not in log and '"database full"' in log
    check = sqlite3.connect(db_path)
    try:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert check.execute("SELECT count(*) FROM books").fetchone() == (len(acknowledged),)
    finally:
        check.close()
    with running_books(db_path) as server:  # room again: the same books, and new ones
        stored = httpx.get(f"{server.url}/books", params={"limit": 1000}).json()
        assert {book["id"]: book for book in stored} == acknowledged
        again = httpx.post(f"{server.url}/books", json={"title": "T", "author": "A"})
        assert again.status_code == 201, again.text


def test_the_event_loop_never_syncs_a_disk_not_even_when_the_wal_restarts(db_path: Path) -> None:
    """strace on the books process: no fsync/fdatasync on the event loop's thread (its main
    thread), across a checkpoint and the write that restarts the WAL after it."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed (.ci/run installs it)")
    with running_books(db_path, env={"BOOKS_ACCESS_LOG": "false"}) as server:
        loop_thread = server.process.pid  # asyncio runs on the main thread: tid == pid
        trace = db_path.parent / "strace.txt"
        tracer = subprocess.Popen(
            [strace, "-f", "-e", "trace=fsync,fdatasync", "-o", str(trace), "-p", str(loop_thread)],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert tracer.stderr is not None
            attached = tracer.stderr.readline()
            assert "attached" in attached, attached  # strace sees the process from now on
            with httpx.Client(base_url=server.url, timeout=30) as http:
                for i in range(CHECKPOINT_EVERY_WRITES):  # the last one starts a checkpoint
                    assert http.post("/books", json={"title": f"t{i}", "author": "a"}).is_success
                # /readyz's query runs on the writer thread, after the checkpoint queued
                # there: once it answers, the checkpoint is over and the WAL restarts next.
                assert http.get("/readyz").status_code == 200
                for i in range(3):
                    assert http.post("/books", json={"title": f"n{i}", "author": "a"}).is_success
        finally:
            tracer.terminate()
            tracer.wait(30)
    syncs = [line.split() for line in trace.read_text().splitlines() if "sync(" in line]
    by_thread = [(int(fields[0]), fields[1].split("(")[0]) for fields in syncs]
    assert by_thread, "no sync seen at all: the checkpoint was not traced"
    assert [call for tid, call in by_thread if tid == loop_thread] == []
