"""A local PgBouncer in front of a :class:`~devstack.postgres.LocalPostgres`, for tests.

Debian's ``pgbouncer`` binary (``/usr/sbin/pgbouncer``, the package's service
never started), listening on 127.0.0.1 with its configuration in a directory
of ours; every database of the server is reachable through it under its own
name. ``pool_mode`` is ``transaction`` by default: what CloudNativePG's
``Pooler`` runs, and the mode that breaks named prepared statements. Like
PostgreSQL it refuses to run as root: when this process is root, it runs as
``nobody`` (the same as the server).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from devstack.postgres import (
    SUPERUSER,
    PostgresUnavailable,
    _as_server_user,
    _hand_over,
    log_tail,
    spawn_server,
    stop_server,
)

MISSING = (
    "pgbouncer not found on PATH or in /usr/sbin: install it (Debian/Ubuntu: apt-get "
    "install pgbouncer; its service need not run)"
)


def find_pgbouncer() -> str | None:
    found = shutil.which("pgbouncer")
    if found:
        return found
    return "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None


class LocalPgBouncer:
    """PgBouncer on ``127.0.0.1:port`` forwarding to PostgreSQL on ``127.0.0.1:server_port``."""

    def __init__(
        self,
        base_dir: Path,
        port: int,
        server_port: int,
        *,
        pool_mode: str = "transaction",
        pool_size: int = 2,
    ) -> None:
        binary = find_pgbouncer()
        if binary is None:
            raise PostgresUnavailable(MISSING)
        self.binary = binary
        self.base_dir = base_dir.resolve()
        self.port = port
        self.server_port = server_port
        self.pool_mode = pool_mode
        self.pool_size = pool_size
        self.log_path = self.base_dir / "pgbouncer.log"
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _write_config(self) -> Path:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        users = self.base_dir / "userlist.txt"
        users.write_text(f'"{SUPERUSER}" ""\n')
        config = self.base_dir / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={self.server_port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {users}\n"
            f"pool_mode = {self.pool_mode}\n"
            f"default_pool_size = {self.pool_size}\n"
            "max_client_conn = 200\n"
        )
        self.base_dir.chmod(0o755)
        _hand_over(self.base_dir)
        return config

    def start(self, timeout: float = 30.0) -> LocalPgBouncer:
        config = self._write_config()
        command = [*_as_server_user(), self.binary, str(config)]
        self.process = spawn_server(command, self.log_path, self.base_dir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PostgresUnavailable(f"pgbouncer exited:\n{self.log()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return self
            time.sleep(0.05)
        raise PostgresUnavailable(f"pgbouncer not listening after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return log_tail(self.log_path)

    def stop(self, timeout: float = 15.0) -> None:
        stop_server(self.process, signal.SIGTERM, timeout)  # SIGTERM: immediate shutdown

    def __enter__(self) -> LocalPgBouncer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
