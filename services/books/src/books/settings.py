"""Settings of the books service, from environment variables.

``HOST`` (default 127.0.0.1), ``PORT`` (default 8081), ``BOOKS_DB_PATH``
(default ``data/books.db``; its directory is created and must be writable),
``BOOKS_DB_SYNCHRONOUS`` (``NORMAL`` or ``FULL``, default ``NORMAL``) and
``BOOKS_ACCESS_LOG`` (``true``/``false``, default ``true``: one JSON line per request).

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

from servicekit.settings import Env, SettingsError

SYNCHRONOUS_MODES = ("NORMAL", "FULL")


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8081
    db_path: Path = Path("data/books.db")
    db_synchronous: str = "NORMAL"
    access_log: bool = True


def load_settings(env: Env | None = None) -> Settings:
    """Read and validate the settings; raises :class:`SettingsError` on a bad value."""
    env = env or Env()
    return Settings(
        host=env.str("HOST", "127.0.0.1"),
        port=env.port("PORT", 8081),
        db_path=env.path("BOOKS_DB_PATH", "data/books.db"),
        db_synchronous=env.str("BOOKS_DB_SYNCHRONOUS", "NORMAL", choices=SYNCHRONOUS_MODES),
        access_log=env.bool("BOOKS_ACCESS_LOG", True),
    )


def prepare_db_path(settings: Settings) -> None:
    """Create the database's directory; a path the service cannot write is a bad setting."""
    path = settings.db_path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SettingsError(
            "BOOKS_DB_PATH", str(path), f"a writable file path ({error.strerror})"
        ) from None
    if path.is_dir():
        raise SettingsError("BOOKS_DB_PATH", str(path), "a file path, not a directory")
    writable = os.access(path, os.W_OK) if path.exists() else os.access(path.parent, os.W_OK)
    if not writable:
        raise SettingsError("BOOKS_DB_PATH", str(path), "a writable file path (permission denied)")
    if path.exists() and path.stat().st_size > 0:
        try:
            with contextlib.closing(sqlite3.connect(path)) as db:
                db.execute("PRAGMA schema_version").fetchall()
        except sqlite3.DatabaseError as error:
            raise SettingsError(
                "BOOKS_DB_PATH", str(path), f"an SQLite database ({error})"
            ) from None
