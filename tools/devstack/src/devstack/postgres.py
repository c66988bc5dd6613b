"""A local PostgreSQL server for the stack, the tests and the benchmarks: never a system service.

``initdb`` into a directory of ours, ``postgres`` listening on 127.0.0.1 (one
port) with its unix socket in that directory too, stopped with the caller.
Binaries come from ``PATH`` or Debian's ``/usr/lib/postgresql/<version>/bin``
(package ``postgresql``). PostgreSQL refuses to run as root: when this process
is root (CI), the server runs as the unprivileged user ``nobody`` and the data
directory is handed to it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from devstack.stackstate import process_start_ticks

SUPERUSER = "postgres"
UNPRIVILEGED_USER = "nobody"
DEBIAN_GLOB = "/usr/lib/postgresql/*/bin"
MISSING = (
    "PostgreSQL server binaries (initdb, postgres) not found on PATH or in "
    f"{DEBIAN_GLOB}: install them (Debian/Ubuntu: apt-get install postgresql)"
)


class PostgresUnavailable(RuntimeError):
    """No binaries, or the server would not start: the message says which."""


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``postgres``: PATH first, then the newest Debian one."""
    on_path = shutil.which("initdb")
    if on_path and (Path(on_path).parent / "postgres").exists():
        return Path(on_path).resolve().parent
    candidates = [p for p in Path("/").glob(DEBIAN_GLOB.lstrip("/")) if (p / "initdb").exists()]

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path.parent.name)) or (0,)

    return max(candidates, key=version) if candidates else None


def _as_server_user(death_signal: str | None = None) -> list[str]:
    """Command prefix that drops root (PostgreSQL refuses to run as root); empty otherwise.

    ``death_signal``: the parent-death signal to set again once the user has
    changed (the kernel clears it on a change of credentials).
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise PostgresUnavailable("running as root and setpriv (util-linux) is missing")
    user = pwd.getpwnam(UNPRIVILEGED_USER)
    return [
        setpriv,
        f"--reuid={user.pw_uid}",
        f"--regid={user.pw_gid}",
        "--clear-groups",
        *([f"--pdeathsig={death_signal}"] if death_signal else []),
        "--",
    ]


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def _started_at(pid: int) -> float | None:
    """When the process started (seconds since the epoch), None if there is no such process."""
    ticks = process_start_ticks(pid)
    boot = _boot_time()
    return None if ticks is None or boot is None else boot + ticks / os.sysconf("SC_CLK_TCK")


def _process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _hand_over(path: Path) -> None:
    """Give ``path`` (recursively) to the server's user when we are root."""
    if os.geteuid() != 0:
        return
    for parent in path.parents:
        if not parent.stat().st_mode & 0o001:
            raise PostgresUnavailable(
                f"running as root, PostgreSQL runs as {UNPRIVILEGED_USER}, which cannot "
                f"reach {path} ({parent} is not searchable by others)"
            )
    user = pwd.getpwnam(UNPRIVILEGED_USER)
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(Path(root) / name, user.pw_uid, user.pw_gid, follow_symlinks=False)
    os.chown(path, user.pw_uid, user.pw_gid)


def log_tail(path: Path) -> str:
    """The end of a server's log file (empty when it cannot be read)."""
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-4000:]
    return ""


def spawn_server(command: list[str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start a server in its own session, its output appended to ``log_path``."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True
        )


def stop_server(process: subprocess.Popen[bytes] | None, signum: int, timeout: float) -> None:
    """Send ``signum`` to a server started in its own session; SIGKILL the session after
    ``timeout``."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signum)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class LocalPostgres:
    """One server on ``127.0.0.1:port`` with its data (and socket) under ``base_dir``.

    ``durable=False`` turns fsync off: for tests and benchmarks, whose data
    need not survive a machine crash (a killed *books* process is what they test).
    """

    def __init__(self, base_dir: Path, port: int, *, durable: bool = True) -> None:
        self.bin_dir = find_bin_dir()
        if self.bin_dir is None:
            raise PostgresUnavailable(MISSING)
        self.base_dir = base_dir.resolve()
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "socket"
        self.log_path = self.base_dir / "postgres.log"
        self.port = port
        self.durable = durable
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: str = SUPERUSER) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _bin(self, name: str) -> str:
        assert self.bin_dir is not None
        return str(self.bin_dir / name)

    def initialise(self) -> None:
        """``initdb`` once (a data directory that exists is kept)."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        _hand_over(self.base_dir)
        command = [
            *_as_server_user(),
            self._bin("initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",  # loopback only, our own cluster
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        ]
        if not self.durable:
            command.append("--no-sync")
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.base_dir)
        if result.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {result.stderr.strip() or result.stdout}")

    def command(self, death_signal: str | None = None) -> list[str]:
        """The server's command line (it stays in the foreground)."""
        command = [
            *_as_server_user(death_signal),
            self._bin("postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
            "-c",
            "max_connections=200",
        ]
        if not self.durable:
            command += ["-c", "fsync=off", "-c", "full_page_writes=off"]
        return command

    def start(self) -> LocalPostgres:
        self.initialise()
        self.process = spawn_server(self.command(), self.log_path, self.base_dir)
        self.wait_ready()
        return self

    def ready_command(self) -> list[str]:
        """``pg_isready``: exit status 0 once the server accepts connections."""
        return [self._bin("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]

    def is_ready(self) -> bool:
        return subprocess.run(self.ready_command(), capture_output=True).returncode == 0

    def stop_leftover(self, timeout: float = 30.0) -> str | None:
        """Stop a server an earlier run left on this data directory; say what was done.

        ``postmaster.pid`` names the server's pid and its start time: the
        process is ours only if that pid is alive, is a postgres, and started
        then (a pid reused by another process is never touched). A lock file
        whose server is gone is left to PostgreSQL, which removes it itself
        at start-up; one whose pid now belongs to another program is removed,
        since PostgreSQL would take that program for a running server.
        """
        lock = self.data_dir / "postmaster.pid"
        try:
            lines = lock.read_text().splitlines()
            pid, started = int(lines[0]), float(lines[2])
        except (OSError, ValueError, IndexError):
            return None
        actual = _started_at(pid)
        if actual is None:
            return None  # gone: PostgreSQL clears its own stale lock file
        if _process_name(pid) != "postgres" or abs(actual - started) > 2.0:
            if _process_name(pid) != "postgres":
                lock.unlink(missing_ok=True)
                return f"removed a stale {lock.name} (its pid {pid} is now another program)"
            return None
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)  # fast shutdown
        deadline = time.monotonic() + timeout
        while _started_at(pid) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if _started_at(pid) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return f"stopped the PostgreSQL server an earlier stack left running (pid {pid})"

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise PostgresUnavailable(f"postgres exited:\n{self.log()}")
            if self.is_ready():
                return
            time.sleep(0.1)
        raise PostgresUnavailable(f"postgres not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return log_tail(self.log_path)

    def psql(self, sql: str, database: str = SUPERUSER) -> str:
        """Run one SQL command as the superuser (through ``psql``); returns its output."""
        command = [self._bin("psql"), "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql]
        command += ["-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", database]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise PostgresUnavailable(f"psql {sql!r}: {result.stderr.strip()}")
        return result.stdout

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"database name {name!r}: lowercase letters, digits, _")
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, checkpoint, exit)."""
        stop_server(self.process, signal.SIGINT, timeout)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
