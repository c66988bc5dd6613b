"""`stack up --books-db postgres`: books on a local PostgreSQL the stack starts and stops."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from devstack import cli, postgres
from testkit.devstack import (
    free_stack_ports,
    pid_alive,
    stack_command,
    started_pids,
    wait_for_output,
)
from testkit.process import ServiceProcess, free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not under pytest's 0700 tmp dir: as root, the server runs as an unprivileged user.
    base = Path(tempfile.mkdtemp(prefix="stack-postgres-"))
    base.chmod(0o755)
    yield base / "data"
    shutil.rmtree(base, ignore_errors=True)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_stack_runs_books_on_a_local_postgres(data_dir: Path) -> None:
    ports = free_stack_ports()
    pg_port = free_port()
    command = stack_command(
        *ports.flags(),
        f"--data-dir={data_dir}",
        "--books-db=postgres",
        f"--postgres-port={pg_port}",
    )
    with ServiceProcess(command, name="stack") as proc:
        wait_for_output(proc, r"all services ready", timeout=180)
        assert f"books database  postgresql://postgres@127.0.0.1:{pg_port}/books" in proc.output()
        created = httpx.post(
            f"{ports.gateway_url}/books", json={"title": "On PostgreSQL", "author": "stack"}
        )
        assert created.status_code == 201, created.text
        listed = httpx.get(f"{ports.gateway_url}/books").json()
        assert [b["title"] for b in listed] == ["On PostgreSQL"]
        assert (data_dir / "postgres" / "data" / "PG_VERSION").exists()
        assert proc.process is not None
        proc.process.send_signal(signal.SIGINT)
        assert proc.wait_exit(timeout=90) == 0
        assert "stopped postgres (exit status 0)" in proc.output()
    assert not port_open(pg_port)


def test_missing_postgres_binaries_is_one_clear_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(postgres, "DEBIAN_GLOB", str(data_dir / "no-postgresql/*/bin"))
    ports = free_stack_ports()
    with pytest.raises(SystemExit) as stopped:
        cli.main(["up", *ports.flags(), f"--data-dir={data_dir}", "--books-db=postgres"])
    assert stopped.value.code == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("stack: --books-db postgres: PostgreSQL server binaries")
    assert "apt-get install postgresql" in err[0]
    assert err[1:] == ["stack: nothing started"]
    assert os.environ["PATH"] == "/nonexistent"


def _postgres_stack(data_dir: Path, pg_port: int | None = None) -> tuple[ServiceProcess, str, int]:
    ports = free_stack_ports()
    pg_port = pg_port or free_port()
    command = stack_command(
        *ports.flags(),
        f"--data-dir={data_dir}",
        "--books-db=postgres",
        f"--postgres-port={pg_port}",
    )
    return ServiceProcess(command, name="stack"), ports.gateway_url, pg_port


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.1)


def _books_ok(gateway: str) -> bool:
    try:
        return httpx.get(f"{gateway}/books", timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_killed_postgres_is_restarted_and_books_recovers(data_dir: Path) -> None:
    proc, gateway, _ = _postgres_stack(data_dir)
    with proc:
        wait_for_output(proc, r"all services ready", timeout=180)
        created = httpx.post(f"{gateway}/books", json={"title": "Kept", "author": "pg"})
        assert created.status_code == 201, created.text
        [first] = started_pids(proc.output())["postgres"]
        mark = len(proc.output())
        os.kill(first, signal.SIGKILL)
        wait_for_output(proc, r"postgres exited \(killed by SIGKILL\); restarting", timeout=60)
        _wait_for(lambda: "postgres is ready again" in proc.output()[mark:], "postgres back")
        _wait_for(lambda: _books_ok(gateway), "books answering through the gateway")
        assert [b["title"] for b in httpx.get(f"{gateway}/books").json()] == ["Kept"]
        assert not pid_alive(first)  # reaped: no zombie left behind
        assert len(started_pids(proc.output())["postgres"]) == 2


def test_sighup_to_the_stack_s_group_stops_everything_postgres_included(data_dir: Path) -> None:
    proc, _, pg_port = _postgres_stack(data_dir)
    with proc:
        wait_for_output(proc, r"all services ready", timeout=180)
        pids = [pid for pids in started_pids(proc.output()).values() for pid in pids]
        os.killpg(proc.pid, signal.SIGHUP)  # the terminal closed
        proc.wait_exit(timeout=90)
        _wait_for(lambda: not any(pid_alive(pid) for pid in pids), "every service gone")
        assert not port_open(pg_port)


def test_kill_9_of_the_runner_leaves_nothing_after_the_next_start(data_dir: Path) -> None:
    proc, _, pg_port = _postgres_stack(data_dir)
    with proc:
        wait_for_output(proc, r"all services ready", timeout=180)
        pids = [pid for pids in started_pids(proc.output()).values() for pid in pids]
        runner = _runner_pid(data_dir)
        os.kill(runner, signal.SIGKILL)
        # Their parent-death signal stops them, PostgreSQL included (fast shutdown).
        _wait_for(lambda: not any(pid_alive(pid) for pid in pids), "every service gone")
    again, gateway, _ = _postgres_stack(data_dir, pg_port)  # the same port is free again
    with again:
        wait_for_output(again, r"all services ready", timeout=180)
        assert _books_ok(gateway)


def test_a_server_left_running_on_the_data_dir_is_stopped_at_the_next_start(
    data_dir: Path,
) -> None:
    """As after a kill -9 where the parent-death signal could not be set: the next start
    recognises its own server by postmaster.pid (pid and start time) and stops it."""
    pg_port = free_port()
    leftover = postgres.LocalPostgres(data_dir.resolve() / "postgres", pg_port)
    leftover.start()
    assert leftover.process is not None
    old_pid = leftover.process.pid
    try:
        proc, gateway, _ = _postgres_stack(data_dir, pg_port)
        with proc:
            wait_for_output(proc, r"all services ready", timeout=180)
            out = proc.output()
            assert (
                f"stopped the PostgreSQL server an earlier stack left running (pid {old_pid})"
                in out
            )
            assert "port already in use" not in out
            assert _books_ok(gateway)
    finally:
        leftover.stop()


def test_a_stale_lock_whose_pid_is_another_program_is_never_that_program_s_end(
    data_dir: Path,
) -> None:
    server = postgres.LocalPostgres(data_dir.resolve() / "postgres", free_port())
    server.initialise()
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        lock = server.data_dir / "postmaster.pid"
        lock.write_text(f"{bystander.pid}\n{server.data_dir}\n{int(time.time())}\n{server.port}\n")
        said = server.stop_leftover()
        assert said is not None and "now another program" in said
        assert bystander.poll() is None  # untouched
        assert not lock.exists()
    finally:
        bystander.kill()
        bystander.wait()


def _runner_pid(data_dir: Path) -> int:
    document = json.loads((data_dir / ".stack" / "state.json").read_text())
    return int(document["runner"]["pid"])
