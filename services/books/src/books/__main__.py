"""``books`` console script: ``uv run books``."""

from __future__ import annotations

import asyncio

from servicekit.cli import handle_command_line
from servicekit.http import serve
from servicekit.logs import configure_logging
from servicekit.settings import load_or_exit
from servicekit.telemetry import configure_telemetry

from books.app import create_app
from books.settings import Settings, load_settings, prepare_db_path


def _load() -> Settings:
    settings = load_settings()
    prepare_db_path(settings)
    if settings.postgres_url is not None:
        from books.postgres import check_connection

        asyncio.run(check_connection(settings))
    return settings


DESCRIPTION = (
    "Async CRUD API for books (Litestar; SQLite by default, PostgreSQL for several "
    "replicas), with /healthz and /readyz. "
    "OpenAPI at /schema/openapi.json."
)


def main() -> None:
    handle_command_line("books", DESCRIPTION, load_settings)
    settings = load_or_exit(_load, "books")
    configure_telemetry("books")
    configure_logging("books")
    serve(create_app(settings), settings.host, settings.port, access_log=settings.access_log)


if __name__ == "__main__":
    main()
