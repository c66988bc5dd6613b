"""Settings of the books service, from environment variables.

``HOST`` (default 127.0.0.1), ``PORT`` (default 8081) and the database:

- ``BOOKS_DATABASE_URL``: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``
  or ``postgresql://user@host:port/database`` (also ``postgres://``; libpq-style
  query options such as ``?sslmode=require`` go to asyncpg). Unset: SQLite at
  ``BOOKS_DB_PATH`` (default ``data/books.db``; its directory is created and
  must be writable), as before the URL existed.
- ``BOOKS_DATABASE_PASSWORD``: the PostgreSQL password, when it should not be
  part of the URL; or ``BOOKS_DATABASE_PASSWORD_FILE``, the path of a file
  holding it (in Kubernetes: the Secret mounted as a file, so the password is
  in no environment). Setting both is refused.
- ``BOOKS_DB_POOL_SIZE`` (PostgreSQL connections per process, default 10),
  ``BOOKS_DB_STATEMENT_TIMEOUT_S`` (server-side ``statement_timeout``, default 5),
  ``BOOKS_DB_ACQUIRE_TIMEOUT_S`` (longest wait for a pooled connection, default 1),
  ``BOOKS_DB_READY_TIMEOUT_S`` (``/readyz`` answers within it, default 0.8, under
  a probe's default ``timeoutSeconds`` of 1), ``BOOKS_DB_MIGRATION_LOCK_TIMEOUT_S``
  (start-up's wait for the migration lock, default 60; migrations themselves have
  no statement timeout) and ``BOOKS_DB_POOLER`` (``none``, or ``transaction``
  behind PgBouncer in transaction mode: no named prepared statements, no
  ``statement_timeout`` startup parameter).
- ``BOOKS_DB_SYNCHRONOUS`` (SQLite: ``NORMAL`` or ``FULL``, default ``NORMAL``).
- ``BOOKS_ACCESS_LOG`` (``true``/``false``, default ``true``: one JSON line per request).

Durability: the database runs in WAL mode. With ``synchronous=NORMAL`` every
committed transaction has been written to the WAL file with ``write()`` before
the request is acknowledged, so it lives in the kernel's page cache and survives
``kill -9`` (or any crash) of the server process; only a power loss or kernel
crash can lose the last commits. ``FULL`` adds an ``fsync`` of the WAL per
commit, surviving power loss too, at the cost of one disk flush per write.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from servicekit.settings import Env, SettingsError

SYNCHRONOUS_MODES = ("NORMAL", "FULL")
SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql", "postgres")
URL_SETTING = "BOOKS_DATABASE_URL"
URL_EXPECTED = "sqlite:///path or postgresql://user@host:port/database"
POOLER_MODES = ("none", "transaction")


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8081
    db_path: Path = Path("data/books.db")
    db_synchronous: str = "NORMAL"
    db_path_setting: str = "BOOKS_DB_PATH"  # the variable db_path came from, for errors
    # Set for PostgreSQL; None means SQLite at db_path.
    postgres_url: str | None = None
    postgres_password: str | None = None
    pool_size: int = 10
    statement_timeout_s: float = 5.0
    acquire_timeout_s: float = 1.0
    ready_timeout_s: float = 0.8
    migration_lock_timeout_s: float = 60.0
    pooler: str = "none"
    access_log: bool = True

    @property
    def backend(self) -> str:
        return "sqlite" if self.postgres_url is None else "postgresql"


def load_settings(env: Env | None = None) -> Settings:
    """Read and validate the settings; raises :class:`SettingsError` on a bad value."""
    env = env or Env()
    host = env.text("HOST", "127.0.0.1")
    port = env.port("PORT", 8081)
    url = env.optional_text(URL_SETTING, expected=URL_EXPECTED)
    db_path = env.path("BOOKS_DB_PATH", "data/books.db")
    db_path_setting = "BOOKS_DB_PATH"
    postgres_url: str | None = None
    if url is not None:
        if url.startswith(SQLITE_PREFIX) and len(url) > len(SQLITE_PREFIX):
            db_path = Path(url[len(SQLITE_PREFIX) :]).expanduser()
            if "\x00" in str(db_path) or "?" in str(db_path):
                raise SettingsError(URL_SETTING, url, URL_EXPECTED)
            db_path_setting = URL_SETTING
        else:
            postgres_url = _postgres_url(url)
    return Settings(
        host=host,
        port=port,
        db_path=db_path,
        db_path_setting=db_path_setting,
        db_synchronous=env.text("BOOKS_DB_SYNCHRONOUS", "NORMAL", choices=SYNCHRONOUS_MODES),
        postgres_url=postgres_url,
        postgres_password=env.secret("BOOKS_DATABASE_PASSWORD"),
        pool_size=env.integer("BOOKS_DB_POOL_SIZE", 10, minimum=1, maximum=1000),
        statement_timeout_s=env.number(
            "BOOKS_DB_STATEMENT_TIMEOUT_S", 5.0, minimum=0.001, maximum=3600.0
        ),
        acquire_timeout_s=env.number(
            "BOOKS_DB_ACQUIRE_TIMEOUT_S", 1.0, minimum=0.001, maximum=3600.0
        ),
        ready_timeout_s=env.number("BOOKS_DB_READY_TIMEOUT_S", 0.8, minimum=0.001, maximum=60.0),
        migration_lock_timeout_s=env.number(
            "BOOKS_DB_MIGRATION_LOCK_TIMEOUT_S", 60.0, minimum=0.001, maximum=86400.0
        ),
        pooler=env.text("BOOKS_DB_POOLER", "none", choices=POOLER_MODES),
        access_log=env.flag("BOOKS_ACCESS_LOG", True),
    )


def _postgres_url(url: str) -> str:
    """A ``postgresql://`` URL asyncpg can parse (its password hidden in any error)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    database = parts.path.lstrip("/")
    if (
        parts.scheme not in POSTGRES_SCHEMES
        or not (parts.hostname or "host=" in parts.query)
        or port == -1
        or not database
        or "/" in database
    ):
        raise SettingsError(URL_SETTING, redact(url), URL_EXPECTED)
    return url


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs and error lines)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def prepare_db_path(settings: Settings) -> None:
    """Create the database's directory; a path the service cannot write is a bad setting."""
    if settings.postgres_url is not None:
        return
    path, name = settings.db_path, settings.db_path_setting
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SettingsError(name, str(path), f"a writable file path ({error.strerror})") from None
    if path.is_dir():
        raise SettingsError(name, str(path), "a file path, not a directory")
    writable = os.access(path, os.W_OK) if path.exists() else os.access(path.parent, os.W_OK)
    if not writable:
        raise SettingsError(name, str(path), "a writable file path (permission denied)")
    if path.exists() and path.stat().st_size > 0:
        try:
            with contextlib.closing(sqlite3.connect(path)) as db:
                db.execute("PRAGMA schema_version").fetchall()
        except sqlite3.DatabaseError as error:
            raise SettingsError(name, str(path), f"an SQLite database ({error})") from None
