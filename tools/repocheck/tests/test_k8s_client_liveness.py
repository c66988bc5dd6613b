"""The client pod's liveness probe reads the heartbeat file its poll loop touches (issue 25).

`client poll` touching the file while it makes progress is tested in
services/client/tests/test_client_poll.py; here: each container's probe reads
the file that container's POLL_HEARTBEAT names, and the probe's command passes
on a fresh file and fails on a stale or missing one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from repocheck.k8s import manifests, workloads
from repocheck.k8s.manifests import REPO_ROOT

IMAGE_PYTHON = "/app/.venv/bin/python"


def client_containers() -> list[dict[str, Any]]:
    (client,) = [
        o
        for o in manifests.render(REPO_ROOT / "k8s")
        if o.get("kind") == "Deployment" and o["metadata"]["name"] == "client"
    ]
    return [dict(c) for c in workloads.containers(client)]


def test_each_poller_is_probed_on_its_own_heartbeat_file() -> None:
    containers = client_containers()
    assert len(containers) == 2
    files = set()
    for container in containers:
        env = {v["name"]: v.get("value") for v in container["env"]}
        command = container["livenessProbe"]["exec"]["command"]
        assert command[0] == IMAGE_PYTHON
        assert command[-1] == env["POLL_HEARTBEAT"]
        assert any(
            env["POLL_HEARTBEAT"].startswith(m["mountPath"] + "/")
            for m in container["volumeMounts"]
        ), "the heartbeat file must be on a writable volume (the root filesystem is read-only)"
        files.add(env["POLL_HEARTBEAT"])
    assert len(files) == 2, "the two pollers share /tmp: one file each"


def run_probe(container: dict[str, Any], heartbeat: Path) -> int:
    command = container["livenessProbe"]["exec"]["command"]
    # The image's interpreter is this one's version; the file is a local stand-in.
    local = [sys.executable, *command[1:-1], str(heartbeat)]
    return subprocess.run(local, capture_output=True, timeout=30).returncode


@pytest.mark.parametrize("age_s", [0, 30])
def test_the_probe_passes_on_a_recent_heartbeat(tmp_path: Path, age_s: int) -> None:
    heartbeat = tmp_path / "heartbeat"
    heartbeat.touch()
    then = time.time() - age_s
    os.utime(heartbeat, (then, then))
    for container in client_containers():
        assert run_probe(container, heartbeat) == 0


def test_the_probe_fails_on_a_stale_or_missing_heartbeat(tmp_path: Path) -> None:
    heartbeat = tmp_path / "heartbeat"
    for container in client_containers():
        assert run_probe(container, heartbeat) != 0  # not written yet: the loop never ran
    heartbeat.touch()
    then = time.time() - 61
    os.utime(heartbeat, (then, then))
    for container in client_containers():
        assert run_probe(container, heartbeat) != 0
