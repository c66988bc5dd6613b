"""`client compare` per resource, from a real ddapm-test-agent fed by real ddtrace spans,
and from a local fake of Datadog's Search spans API fed the same traffic shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from polling_client.__main__ import main
from sources import KEYS, FakeDatadog, by_resource, emit, run_compare, shape
from testkit.process import free_port
from testkit.testagent import ApmTestAgent
from traffic import REGRESSION, Batch

SAME = [
    Batch("v1", "GET /", 40, 4.0),
    Batch("v2", "GET /", 40, 4.0),
    Batch("v1", "POST /speech", 40, 20.0),
    Batch("v2", "POST /speech", 40, 20.0),
]


def test_a_regression_on_one_resource_is_rolled_back_and_plotted(
    empty_agent: ApmTestAgent, tmp_path: Path
) -> None:
    emit(empty_agent, REGRESSION, under_gateway=("v1",))
    plot = tmp_path / "latency.png"

    result = run_compare("--agent", empty_agent.url, "--plot", str(plot), "--format", "json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # 3 resources x (latency, 5xx, 4xx) + the mix
    assert report["correction"]["method"] == "holm" and report["correction"]["family_size"] == 10
    resources = by_resource(report)
    assert list(resources) == ["GET /", "GET /audio/{name}", "POST /speech"]
    speech = resources["POST /speech"]
    assert speech["baseline"]["requests"] == 40 and speech["baseline"]["failed_5xx"] == 0
    assert speech["canary"]["requests"] == 40 and speech["canary"]["failed_5xx"] == 4
    assert speech["baseline"]["p50_ms"] == pytest.approx(25.0, rel=0.05)
    assert speech["canary"]["p50_ms"] == pytest.approx(40.0, rel=0.05)
    assert speech["latency_test"]["p_adjusted"] < 1e-6
    assert speech["status"] == "worse" and speech["worse_in"] == ["latency"]
    assert resources["GET /"]["status"] == "ok"
    assert resources["GET /audio/{name}"]["status"] == "ok"
    assert report["only_in"] == [
        {
            "resource": "GET /new",
            "version": "v2",
            "requests": 5,
            "failures": 0,
            "status": "too few",
            "reason": "",
        }
    ]
    assert report["verdict"] == "roll back"
    assert report["reasons"][0].startswith("POST /speech: v2 is slower than v1")
    assert report["window"]["seconds"] == pytest.approx(0.39, abs=0.01)
    assert any(note.startswith("2 probe spans left out (") for note in report["notes"])
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and plot.stat().st_size > 10_000


def test_the_same_behaviour_is_promoted_in_a_per_resource_table(
    empty_agent: ApmTestAgent,
) -> None:
    emit(empty_agent, SAME, under_gateway=("v2",))

    result = run_compare("--agent", empty_agent.url, "--env", "test")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"text-to-speech entry spans from {empty_agent.url}: v1 (baseline) vs v2 (canary),"
        " per resource"
    )
    assert lines[1].startswith("window: ") and "where v1 and v2 both served" in lines[1]
    assert lines[3].split()[:5] == ["resource", "version", "requests", "4xx", "5xx"]
    rows = [line.split() for line in lines[4:8]]
    assert rows[0][:4] == ["GET", "/", "v1", "40"]
    assert rows[1][:2] == ["v2", "40"] and rows[1][-1] == "ok"
    assert rows[2][:4] == ["POST", "/speech", "v1", "40"]
    # 2 resources x (latency, 5xx, 4xx) + the mix
    assert any("Holm-Bonferroni step-down over 7 tests" in line for line in lines)
    assert any(line.startswith("thresholds: alpha 0.01") for line in lines)
    assert lines[-1].startswith("verdict: PROMOTE")

    other = run_compare("--agent", empty_agent.url, "--resource", "GET /missing")
    assert other.returncode == 1
    assert "entry spans of resource 'GET /missing'" in other.stderr


@pytest.mark.parametrize(
    "plan", [REGRESSION, SAME, [*REGRESSION[:3], Batch("v2", "POST /speech", 10, 20.0)]]
)
def test_the_test_agent_and_datadog_give_the_same_verdict_on_the_same_traffic(
    empty_agent: ApmTestAgent, plan: list[Batch]
) -> None:
    # The in-cluster test agent is the same source through a port forward
    # (`--agent http://localhost:8126`): same request, same code.
    emit(empty_agent, plan)
    from_agent = run_compare("--agent", empty_agent.url, "--format", "json")
    with FakeDatadog(plan, "--max-page=35") as fake:
        from_datadog = fake.compare("--format", "json")
        pages = fake.answers()

    assert from_agent.returncode == 0, from_agent.stderr
    assert from_datadog.returncode == 0, from_datadog.stderr
    agent_report, datadog_report = json.loads(from_agent.stdout), json.loads(from_datadog.stdout)
    assert shape(datadog_report) == shape(agent_report)
    for name, item in by_resource(datadog_report).items():
        twin = by_resource(agent_report)[name]
        for role in ("baseline", "canary"):
            assert item[role]["p50_ms"] == pytest.approx(twin[role]["p50_ms"], rel=1e-3)
    assert datadog_report["source"].startswith(f"Datadog ({fake.url}")
    assert len(pages) > 2 and all(page["status"] == 200 for page in pages)
    cursors = [page["body"]["data"]["attributes"]["page"].get("cursor") for page in pages]
    assert cursors[0] is None and all(cursors[1:-1])  # followed meta.page.after


def test_datadog_is_paged_and_queried_as_documented() -> None:
    with FakeDatadog(SAME, "--max-page=50") as fake:
        result = fake.compare("--env", "test")
        answers = fake.answers()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("verdict: PROMOTE")
    bodies = [answer["body"]["data"] for answer in answers]
    assert {body["type"] for body in bodies} == {"search_request"}
    queries = [body["attributes"]["filter"]["query"] for body in bodies]
    # Only the 160 entry spans (not the inner ones): 4 pages of 50; then the
    # (empty) error spans.
    asked = "service:text-to-speech @_top_level:1 env:test version:(v1 OR v2)"
    assert queries == [asked] * 4 + [f"{asked} status:error"]
    # One absolute window for every query.
    assert len({body["attributes"]["filter"]["from"] for body in bodies}) == 1
    assert len({body["attributes"]["filter"]["to"] for body in bodies}) == 1
    start = bodies[0]["attributes"]["filter"]["from"]
    assert start.endswith("Z") and start[:2] == "20"
    assert {body["attributes"]["page"]["limit"] for body in bodies} == {1000}


def test_datadog_rate_limits_are_waited_out() -> None:
    with FakeDatadog(SAME, "--rate-limit=2") as fake:
        result = fake.compare()
        statuses = [answer["status"] for answer in fake.answers()]
    assert result.returncode == 0, result.stderr
    assert statuses == [429, 429, 200, 200]
    assert result.stdout.splitlines()[-1].startswith("verdict: PROMOTE")


def test_refused_datadog_keys_are_one_line_and_exit_2() -> None:
    with FakeDatadog(SAME) as fake:
        result = fake.compare(keys={"DD_API_KEY": "wrong", "DD_APP_KEY": "wrong"})
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused the keys (HTTP 403)" in lines[0]


def test_missing_datadog_keys_are_one_line_and_exit_2() -> None:
    result = run_compare("--datadog", env={"DD_API_KEY": "x"})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "client: --datadog needs DD_APP_KEY in the environment"
        " (an API key and an application key with the apm_read scope)"
    )


def test_an_unreachable_datadog_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_compare("--datadog", "--timeout", "5", env={**KEYS, "DATADOG_API_URL": url})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Datadog API" in lines[0]


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


def test_agent_and_datadog_are_exclusive() -> None:
    result = run_compare("--agent", "http://127.0.0.1:1", "--datadog")
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr


def test_help_states_the_tests_the_correction_and_thresholds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Mann-Whitney U" in text and "Fisher exact" in text and "Holm" in text
    assert "Defaults: alpha 0.01, latency margin 0.1, error margin 0.01, min samples 30" in text


def test_datadog_rate_limiting_that_never_ends_is_one_line() -> None:
    with FakeDatadog(SAME, "--rate-limit=100") as fake:
        result = fake.compare()
        statuses = [answer["status"] for answer in fake.answers()]
    assert result.returncode == 1
    assert statuses == [429] * 6  # the first try and five retries, each after X-RateLimit-Reset
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "still rate limiting after 5 retries (HTTP 429)" in lines[0]


# `client compare` where the polling-client[compare] extra is not installed (the
# image): simulated by making the extra's modules unimportable in a fresh
# interpreter; tests/test_containers.py checks the real image.
WITHOUT_EXTRA = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # what importing (and find_spec) sees for a missing module
from polling_client.__main__ import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("missing", ["scipy", "matplotlib", "datadog_api_client"])
def test_compare_without_the_extra_is_one_line_naming_what_to_install(missing: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRA, missing, "compare", "--agent", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DD_TRACE_ENABLED": "false"},
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"(missing: {missing})" in lines[0]
    assert "pip install 'polling-client[compare]'" in lines[0]


IMPORTED_BY = """
import sys
from polling_client.__main__ import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = ("scipy", "numpy", "matplotlib", "datadog_api_client", "litestar", "granian")
print(",".join(name for name in heavy if name in sys.modules))
"""


@pytest.mark.parametrize("argv", [["--help"], ["poll", "--help"], ["compare", "--help"]])
def test_help_and_poll_do_not_import_the_compare_extra(argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORTED_BY, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DD_TRACE_ENABLED": "false"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == ""
