"""`client compare` against a real ddapm-test-agent fed by real ddtrace spans."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from polling_client.__main__ import main
from testkit.process import REPO_ROOT, console_script, free_port
from testkit.testagent import ApmTestAgent

EMITTER = Path(__file__).with_name("emit_traces.py")


@pytest.fixture(scope="module")
def agent() -> Iterator[ApmTestAgent]:
    with ApmTestAgent() as running:
        yield running


@pytest.fixture
def empty_agent(agent: ApmTestAgent) -> ApmTestAgent:
    httpx.get(f"{agent.url}/test/session/clear", timeout=5.0).raise_for_status()
    return agent


def emit(agent: ApmTestAgent, *runs: tuple[str, list[str]]) -> None:
    """Run one emitter process per (version, flags), concurrently."""
    processes = []
    for version, flags in runs:
        env = {
            **os.environ,
            **agent.tracer_env(),
            "DD_SERVICE": "text-to-speech",
            "DD_VERSION": version,
            "DD_ENV": "test",
        }
        processes.append(
            subprocess.Popen([sys.executable, str(EMITTER), *flags], env=env, cwd=REPO_ROOT)
        )
    for process in processes:
        assert process.wait(timeout=60) == 0


def wait_for_entry_spans(agent: ApmTestAgent, count: int) -> None:
    agent.wait_for_spans(
        lambda spans: (
            sum(1 for s in spans if s.get("name") == "litestar.request" and "version" in s["meta"])
            >= count
        )
    )


def run_compare(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [console_script("client"), "compare", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k != "AGENT_URL"},
            "DD_TRACE_ENABLED": "false",
        },
    )


def test_a_slower_erring_canary_is_rolled_back_and_plotted(
    empty_agent: ApmTestAgent, tmp_path: Path
) -> None:
    emit(
        empty_agent,
        ("v1", ["--count", "60", "--latency-ms", "20", "--under-gateway"]),
        ("v2", ["--count", "60", "--latency-ms", "40", "--errors", "6"]),
    )
    wait_for_entry_spans(empty_agent, 122)  # plus one health probe each
    plot = tmp_path / "latency.png"

    result = run_compare("--agent", empty_agent.url, "--plot", str(plot), "--format", "json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["baseline"]["requests"] == 60 and report["baseline"]["errors"] == 0
    assert report["canary"]["requests"] == 60 and report["canary"]["errors"] == 6
    assert report["baseline"]["p50_ms"] == pytest.approx(25.0, rel=0.05)
    assert report["canary"]["p50_ms"] == pytest.approx(50.0, rel=0.05)
    assert report["latency_test"]["p_value"] < 1e-6
    assert report["error_test"]["p_value"] < 0.05
    assert report["verdict"] == "roll back"
    assert "2 health-probe spans left out" in report["notes"]
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and plot.stat().st_size > 10_000


def test_the_same_behaviour_is_promoted_in_a_side_by_side_table(
    empty_agent: ApmTestAgent,
) -> None:
    emit(
        empty_agent,
        ("v1", ["--count", "40", "--latency-ms", "20"]),
        ("v2", ["--count", "40", "--latency-ms", "20", "--under-gateway"]),
    )
    wait_for_entry_spans(empty_agent, 82)

    result = run_compare("--agent", empty_agent.url, "--env", "test")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"text-to-speech entry spans from {empty_agent.url}"
    header = next(line for line in lines if "(baseline)" in line)
    assert header.split() == ["v1", "(baseline)", "v2", "(canary)"]
    assert next(line for line in lines if line.startswith("requests")).split() == [
        "requests",
        "40",
        "40",
    ]
    assert any(line.startswith("latency: Mann-Whitney U") for line in lines)
    assert any(line.startswith("thresholds: alpha 0.01") for line in lines)
    assert lines[-1].startswith("verdict: PROMOTE")

    other = run_compare("--agent", empty_agent.url, "--resource", "GET /missing")
    assert other.returncode == 1
    assert "entry spans of resource 'GET /missing'" in other.stderr


def test_an_agent_without_text_to_speech_traces_is_an_error(empty_agent: ApmTestAgent) -> None:
    result = run_compare("--agent", empty_agent.url)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "holds no versioned text-to-speech entry spans" in lines[0]


def test_an_unreachable_agent_is_one_clear_line() -> None:
    result = run_compare("--agent", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the APM test agent" in lines[0]


def test_help_states_the_tests_and_thresholds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Mann-Whitney U" in text and "Fisher exact" in text
    assert "Defaults: alpha 0.01, latency margin 0.1, error margin 0.01, min samples 30" in text
