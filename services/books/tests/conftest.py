"""Fixtures: every books test that touches the database runs on SQLite and on PostgreSQL.

One local PostgreSQL server for the whole session (started on the first
PostgreSQL test), a fresh database for each test or module.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from testkit.books import BACKENDS, BooksServer, Database, TestDatabases, running_books


@pytest.fixture(scope="session")
def databases() -> Iterator[TestDatabases]:
    made = TestDatabases()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fresh_database(databases: TestDatabases, backend: str) -> Database:
    """A new, empty database of the test's backend."""
    return databases.new(backend)


@pytest.fixture(scope="module", params=BACKENDS)
def books(request: pytest.FixtureRequest, databases: TestDatabases) -> Iterator[BooksServer]:
    """One books process on a fresh database, shared by a test module, per backend."""
    with running_books(databases.new(str(request.param))) as server:
        yield server


@pytest.fixture(scope="module")
def client(books: BooksServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=books.url, timeout=10.0) as http:
        yield http
