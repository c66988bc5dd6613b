"""The store seam: store.py is a leaf, the app picks the backend, routes pick reads by kind."""

from __future__ import annotations

import ast
from pathlib import Path

import books.store
from books.app import create_store
from books.postgres import PostgresStore
from books.settings import load_settings
from books.sqlite import SqliteStore
from books.store import reads_on_loop
from servicekit.settings import Env


def test_store_imports_no_backend() -> None:
    tree = ast.parse(Path(books.store.__file__).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert {name for name in imported if name.startswith("books")} == {"books.models"}


def test_sqlite_reads_on_the_loop_and_postgres_awaits(tmp_path: Path) -> None:
    sqlite = create_store(load_settings(Env({"BOOKS_DB_PATH": str(tmp_path / "books.db")})))
    assert isinstance(sqlite, SqliteStore) and reads_on_loop(sqlite)
    postgres = create_store(
        load_settings(Env({"BOOKS_DATABASE_URL": "postgresql://books@127.0.0.1:1/books"}))
    )
    assert isinstance(postgres, PostgresStore) and not reads_on_loop(postgres)


def test_a_store_with_coroutine_reads_is_not_read_on_the_loop() -> None:
    class Awaited:
        async def get_json(self, book_id: int) -> bytes | None:
            return None

        def list_json(self, limit: int, offset: int) -> bytes:
            return b"[]"

    assert not reads_on_loop(Awaited())
    assert not reads_on_loop(object())
