from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from testkit.books import BooksServer, running_books


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BooksServer]:
    """One books process on a fresh database, shared by a test module."""
    db_path: Path = tmp_path_factory.mktemp("books") / "books.db"
    with running_books(db_path) as server:
        yield server


@pytest.fixture(scope="module")
def client(books: BooksServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=books.url, timeout=10.0) as http:
        yield http
