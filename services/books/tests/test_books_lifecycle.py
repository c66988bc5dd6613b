"""Durability, concurrency, shutdown and start-up settings of the books process.

Tests taking ``fresh_database`` run on SQLite and on PostgreSQL (see conftest).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
from testkit.books import Database, running_books
from testkit.process import console_script


def all_books(url: str) -> list[dict[str, object]]:
    books: list[dict[str, object]] = []
    while True:
        page = httpx.get(f"{url}/books", params={"limit": 1000, "offset": len(books)}).json()
        books.extend(page)
        if len(page) < 1000:
            return books


def test_books_acknowledged_writes_survive_kill_9(fresh_database: Database) -> None:
    with running_books(fresh_database) as server:
        acknowledged: dict[int, dict[str, object]] = {}
        with httpx.Client(base_url=server.url) as http:
            for i in range(150):
                body = {"title": f"Book {i}", "author": f"Author {i}", "description": "d" * i}
                response = http.post("/books", json=body)
                assert response.status_code == 201
                acknowledged[response.json()["id"]] = response.json()
            changed = http.patch("/books/1", json={"title": "Changed"}).json()
            acknowledged[1] = changed
            assert http.delete("/books/2").status_code == 204
            del acknowledged[2]
        os.killpg(server.process.pid, signal.SIGKILL)  # no shutdown, no checkpoint, no pool close
        assert server.process.wait_exit() == -signal.SIGKILL

        server.start_again()
        stored = {book["id"]: book for book in all_books(server.url)}
    assert stored == acknowledged


def test_books_concurrent_writes_are_all_kept(fresh_database: Database) -> None:
    async def post_many(url: str, count: int) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=32)) as http:
            return await asyncio.gather(
                *(http.post("/books", json={"title": f"c{i}", "author": "x"}) for i in range(count))
            )

    async def patch_many(url: str, book_id: int, count: int) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url) as http:
            return await asyncio.gather(
                *(http.patch(f"/books/{book_id}", json={"author": f"a{i}"}) for i in range(count))
            )

    with running_books(fresh_database) as server:
        responses = asyncio.run(post_many(server.url, 300))
        assert all(r.status_code == 201 for r in responses)
        ids = [r.json()["id"] for r in responses]
        assert len(set(ids)) == 300
        patches = asyncio.run(patch_many(server.url, ids[0], 50))
        assert all(r.status_code == 200 for r in patches)
        stored = all_books(server.url)
        assert sorted(b["id"] for b in stored) == sorted(ids)
        assert {b["title"] for b in stored} == {f"c{i}" for i in range(300)}
        final_author = httpx.get(f"{server.url}/books/{ids[0]}").json()["author"]
        assert final_author in {f"a{i}" for i in range(50)}


def test_books_sigterm_finishes_requests_closes_database_exits_0(
    fresh_database: Database,
) -> None:
    with running_books(fresh_database) as server:
        results: list[httpx.Response | Exception] = []
        first_answer = threading.Event()

        def writer(n: int) -> None:
            with httpx.Client(base_url=server.url) as http:
                for i in range(n):
                    try:
                        results.append(http.post("/books", json={"title": f"t{i}", "author": "a"}))
                    except httpx.HTTPError as error:  # refused once the listener closed
                        results.append(error)
                        return
                    first_answer.set()

        threads = [threading.Thread(target=writer, args=(200,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        assert first_answer.wait(10)
        server.process.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        assert server.process.wait_exit(15) == 0
        for thread in threads:
            thread.join(15)
        log = server.process.output()
        assert "database closed" in log
        assert "Traceback" not in log
        answered = [r for r in results if isinstance(r, httpx.Response)]
        assert answered and all(r.status_code == 201 for r in answered)
        if isinstance(fresh_database, Path):
            # A clean SQLite close checkpoints and removes the write-ahead log.
            assert not Path(f"{fresh_database}-wal").exists()

        server.start_again()
        stored_ids = {book["id"] for book in all_books(server.url)}
    assert {r.json()["id"] for r in answered} <= stored_ids


def run_books(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "BOOKS_DB_PATH": str(tmp_path / "ok.db"), "PORT": "1", **env}
    return subprocess.run(
        [console_script("books")], env=environ, capture_output=True, text=True, timeout=30
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PORT": "abc"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"BOOKS_DB_SYNCHRONOUS": "sometimes"}, "BOOKS_DB_SYNCHRONOUS"),
        ({"BOOKS_DB_PATH": "/proc/books/books.db"}, "BOOKS_DB_PATH"),
        ({"BOOKS_DB_PATH": "{tmp}/a-file/books.db"}, "BOOKS_DB_PATH"),
        ({"BOOKS_DB_PATH": "{tmp}"}, "BOOKS_DB_PATH"),
        ({"BOOKS_DB_PATH": "{tmp}/not-a-database.db"}, "BOOKS_DB_PATH"),
        ({"BOOKS_DATABASE_URL": "sqlite:///{tmp}/a-file/books.db"}, "BOOKS_DATABASE_URL"),
        ({"BOOKS_DATABASE_URL": "mysql://books@127.0.0.1/books"}, "BOOKS_DATABASE_URL"),
        ({"BOOKS_DATABASE_URL": "postgresql://books@127.0.0.1:99999/b"}, "BOOKS_DATABASE_URL"),
        ({"BOOKS_DATABASE_URL": "postgresql://books@127.0.0.1:5432/"}, "BOOKS_DATABASE_URL"),
        ({"BOOKS_DATABASE_URL": "sqlite://"}, "BOOKS_DATABASE_URL"),
        ({"BOOKS_DB_POOL_SIZE": "0"}, "BOOKS_DB_POOL_SIZE"),
        ({"BOOKS_DB_STATEMENT_TIMEOUT_S": "soon"}, "BOOKS_DB_STATEMENT_TIMEOUT_S"),
    ],
)
def test_books_bad_setting_exits_2_naming_it(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    (tmp_path / "not-a-database.db").write_text("plain text, not SQLite " * 20)
    env = {key: value.replace("{tmp}", str(tmp_path)) for key, value in env.items()}
    result = run_books(env, tmp_path)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_books_port_in_use_exits_1_with_one_line(tmp_path: Path) -> None:
    with running_books(tmp_path / "first.db") as first:
        result = run_books({"PORT": str(first.port)}, tmp_path)
        assert first.process.is_running()
        assert httpx.get(f"{first.url}/healthz").status_code == 200
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(first.port) in lines[0], result.stderr
