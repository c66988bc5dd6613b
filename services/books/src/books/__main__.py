"""``books`` console script: ``uv run books``."""

from __future__ import annotations

import asyncio

from servicekit.http import serve
from servicekit.main import run_service

from books.app import create_app
from books.settings import Settings, load_settings, prepare_db_path

DESCRIPTION = (
    "Async CRUD API for books (Litestar; SQLite by default, PostgreSQL for several "
    "replicas), with /healthz and /readyz. "
    "OpenAPI at /schema/openapi.json."
)


def _prepare(settings: Settings) -> None:
    """The database is reachable: a SQLite directory to write, a PostgreSQL server."""
    prepare_db_path(settings)
    if settings.postgres_url is not None:
        from books.postgres import check_connection

        asyncio.run(check_connection(settings))


def _serve(settings: Settings) -> None:
    from servicekit.telemetry import instrument_app  # configured by now (run_service)

    serve(
        instrument_app(create_app(settings)),
        settings.host,
        settings.port,
        access_log=settings.access_log,
        uvloop=True,
    )


def main() -> None:
    run_service("books", DESCRIPTION, load_settings, _serve, prepare=_prepare)


if __name__ == "__main__":
    main()
