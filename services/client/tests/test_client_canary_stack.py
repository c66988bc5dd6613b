"""`client canary` rolls back a slow v2 on a real `stack up`.

The stack runs from a copy of the workspace whose speech front answers `GET /`
80 ms late in v2 only (a bad release of the canary: the delay is in v2's own
handler, so its spans show it, as a slow release would). The rollout must end
with every request to v1, before its last step, and the gateway's own traffic
must confirm the weights.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from client_runs import run_client
from devstack.services import Ports
from testkit.devstack import (
    copy_workspace,
    count_versions,
    free_stack_ports,
    wait_for_output,
    wait_for_weights,
)
from testkit.process import REPO_ROOT, ServiceProcess, console_script

pytestmark = pytest.mark.slow

ROUTES = Path("libs/speech_front/src/speech_front/routes.py")
FAST = """@get("/", media_type=MediaType.TEXT, sync_to_thread=False)
def banner(state: State) -> str:
    return _front(state).banner + "\\n"
"""
SLOW = """@get("/", media_type=MediaType.TEXT)
async def banner(state: State) -> str:
    front = _front(state)
    if front.settings.version == "v2":  # the test's bad release: v2 only, 80 ms late
        await asyncio.sleep(0.08)
    return front.banner + "\\n"
"""


@dataclass
class SlowStack:
    ports: Ports
    data: Path
    process: ServiceProcess


@pytest.fixture(scope="module")
def slow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlowStack]:
    base = tmp_path_factory.mktemp("slow-canary")
    root = copy_workspace(REPO_ROOT, base / "repo")
    routes = root / ROUTES
    source = routes.read_text()
    assert FAST in source, "the banner handler changed: update this test's edit"
    routes.write_text(source.replace(FAST, SLOW))
    ports = free_stack_ports()
    data = base / "data"
    command = [console_script("stack"), "up", *ports.flags(), f"--data-dir={data}", "--no-reload"]
    with ServiceProcess(command, name="stack", cwd=root) as process:
        wait_for_output(process, r"Ctrl-C stops everything", timeout=120)
        yield SlowStack(ports, data, process)


def test_a_slow_v2_is_rolled_back_on_the_real_stack(slow_stack: SlowStack) -> None:
    ports = slow_stack.ports
    weights = slow_stack.data / ".stack" / "weights.json"
    result = run_client(
        *("canary", "--agent", f"http://127.0.0.1:{ports.agent}"),
        *("--gateway", ports.gateway_url, "--weights-file", str(weights)),
        *("--steps", "50,100", "--interval", "10s", "--rate", "20", "--mix", "root=1"),
        *("--resource", "GET /", "--latency-margin", "0.5", "--format", "json"),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert [(s["weight"], s["verdict"]) for s in report["steps"]] == [(50, "roll back")], report
    assert report["final_weights"] == {"v1": 100, "v2": 0}
    assert json.loads(weights.read_text()) == {"weights": {"v1": 100, "v2": 0}}
    wait_for_weights(slow_stack.process, {"v1": 100, "v2": 0})  # read every 0.2 s
    versions = asyncio.run(count_versions(ports.gateway_url, 40))
    assert versions == Counter({"v1": 40})  # the gateway's traffic confirms
