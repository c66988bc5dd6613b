"""The books Litestar application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from servicekit.http import healthz_route, json_api, readiness_route

from books.routes import book_routes
from books.settings import Settings
from books.store import Store

MAX_BODY_BYTES = 64 * 1024


def create_store(settings: Settings) -> Store:
    """The store ``settings`` ask for (not opened yet): PostgreSQL when a URL is set."""
    if settings.postgres_url is not None:
        from books.postgres import PostgresStore

        return PostgresStore(settings)
    from books.sqlite import SqliteStore

    return SqliteStore(settings.db_path, settings.db_synchronous)


def create_app(settings: Settings) -> Litestar:
    """The app; the database is opened (and migrated) at start-up, closed at shutdown."""
    store = create_store(settings)

    @asynccontextmanager
    async def database(_: Litestar) -> AsyncIterator[None]:
        await store.open()
        try:
            yield
        finally:
            await store.close()

    return json_api(
        [book_routes(store), healthz_route(), readiness_route(store.ping)],
        title="books",
        max_body_bytes=MAX_BODY_BYTES,
        lifespan=[database],
    )
