"""`stack up --books-db postgres`: books on a local PostgreSQL the stack starts and stops."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from devstack import cli, postgres
from testkit.devstack import free_stack_ports, stack_command, wait_for_output
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
        assert "stopped PostgreSQL" in proc.output()
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
