"""The stack refuses clearly, and leaves nothing running, when it cannot start."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from testkit.devstack import (
    free_stack_ports,
    live_processes_in_groups,
    pid_alive,
    stack_command,
    started_pids,
)
from testkit.process import REPO_ROOT, ServiceProcess


def test_port_in_use_is_named_and_nothing_starts(tmp_path: Path) -> None:
    ports = free_stack_ports()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports.books))
        taken.listen()
        proc = ServiceProcess(
            stack_command(*ports.flags(), f"--data-dir={tmp_path / 'data'}"), name="stack"
        )
        with proc:
            assert proc.wait_exit(timeout=60) == 1
            output = proc.output()
    assert f"stack: port {ports.books} (books) is already in use" in output
    assert "stack: nothing started" in output
    assert started_pids(output) == {}
    assert not (tmp_path / "data").exists()


def test_service_failing_to_start_is_named_and_everything_stops(tmp_path: Path) -> None:
    istio = tmp_path / "istio"
    shutil.copytree(REPO_ROOT / "k8s" / "istio", istio)
    services = istio / "virtualservices.yaml"
    services.write_text(
        services.read_text().replace("      timeout: 5s\n", "      timeout: 5s\n      mirror: {}\n")
    )
    ports = free_stack_ports()
    proc = ServiceProcess(
        stack_command(*ports.flags(), f"--data-dir={tmp_path / 'data'}", f"--istio-dir={istio}"),
        name="stack",
    )
    with proc:
        assert proc.wait_exit(timeout=90) == 1
        output = proc.output()
    assert "http[0].mirror: not supported by the local gateway" in output
    assert "local-gateway exited (exit status 2) before it was ready; stopping the stack" in output
    pids = [pid for group in started_pids(output).values() for pid in group]
    assert len(pids) == 6
    assert [pid for pid in pids if pid_alive(pid)] == []
    assert live_processes_in_groups(set(pids)) == []
