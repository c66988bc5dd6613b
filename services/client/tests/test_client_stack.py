"""`client poll` and `client compare` against the real local stack.

`stack up` runs books, tts-backend, text-to-speech v1 and v2 (real eSpeak
speech), the local gateway and the APM test agent; the client polls through the
gateway, then compares the versions from the traces the fronts sent.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from client_runs import run_client
from devstack.services import Ports
from polling_client.traces import fetch_traces, select_entry_spans
from testkit.devstack import (
    count_versions,
    free_stack_ports,
    stack_command,
    wait_for_output,
    wait_for_weights,
)
from testkit.process import REPO_ROOT, ServiceProcess


@pytest.fixture(scope="module")
def stack_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack-data")


@pytest.fixture(scope="module")
def stack_process(stack_data: Path) -> Iterator[tuple[Ports, ServiceProcess]]:
    ports = free_stack_ports()
    process = ServiceProcess(
        stack_command(*ports.flags(), f"--data-dir={stack_data}"), name="stack", cwd=REPO_ROOT
    )
    with process:
        wait_for_output(process, r"client poll --gateway", timeout=90)
        yield ports, process


@pytest.fixture(scope="module")
def stack(stack_process: tuple[Ports, ServiceProcess]) -> Ports:
    return stack_process[0]


def agent_entry_spans(agent_url: str) -> int:
    """Entry spans of text-to-speech the agent holds, selected as `client compare` does."""
    selection = select_entry_spans(fetch_traces(agent_url), service="text-to-speech")
    return len(selection.spans)


def test_poll_then_compare_through_the_real_stack(stack: Ports, tmp_path: Path) -> None:
    agent_url = f"http://127.0.0.1:{stack.agent}"
    poll = run_client(
        "poll",
        "--gateway",
        stack.gateway_url,
        "--count",
        "120",
        "--rate",
        "0",
        "--concurrency",
        "8",
        "--max-error-rate",
        "0",
        "--format",
        "json",
    )
    assert poll.returncode == 0, poll.stdout + poll.stderr
    report = json.loads(poll.stdout)
    versions = report["versions"]
    assert report["errors"] == 0
    assert versions["books"]["requests"] == 24
    assert versions["v1"]["requests"] > 0 and versions["v2"]["requests"] > 0
    tts_requests = versions["v1"]["requests"] + versions["v2"]["requests"]

    # The fronts' tracers flush in the background: wait until every tallied answer
    # has its entry span at the agent (counting every span of the service, as this
    # once did, stopped the wait early on a busy machine).
    deadline = time.monotonic() + 120
    while (seen := agent_entry_spans(agent_url)) < tts_requests:
        assert time.monotonic() < deadline, f"{seen} of {tts_requests} entry spans at the agent"
        time.sleep(0.2)

    plot = tmp_path / "latency.png"
    compare = run_client("compare", "--agent", agent_url, "--plot", str(plot), "--format", "json")
    assert compare.returncode == 0, compare.stderr
    result = json.loads(compare.stdout)
    # Every answer the client tallied has its entry span (plus the client's
    # reachability check, a GET / that was not tallied): compared, or left out as
    # outside the window where both versions served (the first and last few).
    compared = sum(
        item[role]["requests"] for item in result["resources"] for role in ("baseline", "canary")
    ) + sum(one["requests"] for one in result["only_in"])
    outside = sum(
        int(note.split()[0])
        for note in result["notes"]
        if note.endswith(" entry spans outside the window where both versions served")
    )
    assert tts_requests <= compared + outside <= tts_requests + 1, result["notes"]
    assert result["baseline"] == "v1" and result["canary"] == "v2"
    # The client's mix reaches every text-to-speech route of both versions.
    assert {item["resource"] for item in result["resources"]} >= {"GET /", "POST /speech"}
    assert result["correction"]["method"] == "holm"
    assert plot.stat().st_size > 10_000

    # Verdicts on shapes this test determines, from the same real traces. GET / is
    # the same handler in v1 and v2 (speech_front) and its requests were
    # interleaved: one latency distribution, so p < 1e-9 (the smallest --alpha)
    # comes once in 1e9 runs -> promote.
    sure = run_client(
        *("compare", "--agent", agent_url, "--resource", "GET /", "--alpha", "1e-9"),
        *("--min-samples", "1", "--format", "json"),
    )
    assert sure.returncode == 0, sure.stderr
    promoted = json.loads(sure.stdout)
    assert promoted["verdict"] == "promote", promoted
    [root] = promoted["resources"]
    # The same, asking one request more than the canary has: not enough -> hold, naming v2.
    need = str(root["canary"]["requests"] + 1)
    few = run_client(
        *("compare", "--agent", agent_url, "--resource", "GET /", "--alpha", "1e-9"),
        *("--min-samples", need, "--format", "json"),
    )
    assert few.returncode == 0, few.stderr
    held = json.loads(few.stdout)
    assert held["verdict"] == "hold", held
    assert any("v2" in reason for reason in held["reasons"]), held

    speech = run_client("compare", "--agent", agent_url, "--resource", "POST /speech")
    assert speech.returncode == 0, speech.stderr
    assert "verdict:" in speech.stdout


def test_canary_promotes_a_healthy_v2_on_the_real_stack(
    stack_process: tuple[Ports, ServiceProcess], stack_data: Path
) -> None:
    """`client canary` against `stack up`: its gateway follows DATA_DIR/.stack/weights.json.

    GET / only (the same handler in v1 and v2; the stack's own client sends a few
    requests of the other resources, too few to judge in a 10 s step).
    """
    stack, process = stack_process
    weights = stack_data / ".stack" / "weights.json"
    try:
        result = run_client(
            *("canary", "--agent", f"http://127.0.0.1:{stack.agent}"),
            *("--gateway", stack.gateway_url, "--weights-file", str(weights)),
            *("--steps", "50,100", "--interval", "10s", "--rate", "20", "--mix", "root=1"),
            *("--resource", "GET /", "--latency-margin", "0.5", "--format", "json"),
        )
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads(result.stdout)
        assert [(s["weight"], s["verdict"]) for s in report["steps"]] == [
            (50, "promote"),
            (100, "set"),
        ]
        assert report["steps"][0]["requests"]["v2"] >= 30
        wait_for_weights(process, {"v1": 0, "v2": 100})  # the gateway reads the file every 0.2 s
        versions = asyncio.run(count_versions(stack.gateway_url, 40))
        assert versions == Counter({"v2": 40})  # the gateway's traffic confirms
    finally:
        weights.unlink(missing_ok=True)  # the Istio files' 70/30 again
