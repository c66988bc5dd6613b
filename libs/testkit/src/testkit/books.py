"""Run the books service as a real process, for this service's tests and others'.

    with running_books(tmp_path / "books.db") as books:
        httpx.get(f"{books.url}/books")

Other services' tests (the text-to-speech fronts) use the same helper to get a
real books API on a free loopback port.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from testkit.process import ServiceProcess, free_port


@dataclass
class BooksServer:
    """A started books process and where it listens."""

    process: ServiceProcess
    port: int
    db_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_again(self) -> None:
        """Start a fresh process on the same port and database (after kill/terminate)."""
        self.process.stop()
        self.process = _process(self.db_path, self.port, self.process.env).start()
        self.process.wait_http_ready(f"{self.url}/readyz")


def _process(db_path: Path, port: int, env: Mapping[str, str] | None) -> ServiceProcess:
    environ = {"HOST": "127.0.0.1", "PORT": str(port), "BOOKS_DB_PATH": str(db_path)}
    return ServiceProcess(["books"], {**(env or {}), **environ}, name="books")


@contextlib.contextmanager
def running_books(
    db_path: Path, *, port: int | None = None, env: Mapping[str, str] | None = None
) -> Iterator[BooksServer]:
    """Start ``books`` on ``db_path`` and a free port; wait for /readyz; stop it after."""
    chosen = port or free_port()
    server = BooksServer(_process(db_path, chosen, env).start(), chosen, db_path)
    try:
        server.process.wait_http_ready(f"{server.url}/readyz")
        yield server
    finally:
        server.process.stop()
