"""Every canary the verdict must see through, from both sources: the real ddapm-test-agent
fed by real ddtrace spans, and the Datadog fake fed the same plan at the same times.

Each case gives the same verdict, the same per-resource statuses (and what made a
resource worse) and the same counts from both; plus one that MUST promote (a verdict
that never promotes is no fix).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from polling_client.traces import is_probe
from scipy.stats import chi2_contingency
from sources import FakeDatadog, emit, run_compare, shape
from testkit.testagent import ApmTestAgent
from traffic import REGRESSION, Batch

AUDIO, HOME, SPEECH = "GET /audio/{name}", "GET /", "POST /speech"
UNMATCHED = "GET <unmatched>"
HOME_SPEECH = ((HOME, 4.0), (SPEECH, 20.0))


def same(resource: str, n: int, latency_ms: float) -> list[Batch]:
    return [Batch("v1", resource, n, latency_ms), Batch("v2", resource, n, latency_ms)]


def ok(*resources: str) -> dict[str, tuple[str, list[str]]]:
    """The expected statuses of resources where v2 is no worse than v1."""
    return {resource: ("ok", []) for resource in resources}


# v2's first 40 speech requests are ten times slower (cold caches), then as fast as v1.
COLD_START = [
    *same(HOME, 100, 4.0),
    Batch("v1", SPEECH, 100, 20.0),
    Batch("v2", SPEECH, 40, 200.0),
    Batch("v2", SPEECH, 60, 20.0, start_s=0.4),
]


@dataclass(frozen=True)
class Case:
    name: str
    plan: list[Batch]
    verdict: str
    statuses: dict[str, tuple[str, list[str]]]  # resource -> (status, worse_in)
    only_in: dict[str, str] = field(default_factory=dict)  # resource -> status
    mix_significant: bool = False
    args: tuple[str, ...] = ()
    reason: str = ""  # a text one of the reasons holds


CASES = [
    Case(
        "v2 20% faster everywhere, all successful: promote",
        [
            Batch("v1", HOME, 60, 4.0),
            Batch("v2", HOME, 60, 3.2),
            Batch("v1", SPEECH, 60, 20.0),
            Batch("v2", SPEECH, 60, 16.0),
            Batch("v1", AUDIO, 60, 6.0),
            Batch("v2", AUDIO, 60, 4.8),
        ],
        "promote",
        ok(HOME, SPEECH, AUDIO),
    ),
    Case(
        "a fast 404 to every audio request: roll back on 4xx",
        [
            *same(HOME, 60, 4.0),
            *same(SPEECH, 60, 20.0),
            Batch("v1", AUDIO, 60, 6.0),
            Batch("v2", AUDIO, 60, 1.0, rejected=60),
        ],
        "roll back",
        {**ok(HOME, SPEECH), AUDIO: ("worse", ["4xx"])},
        reason="GET /audio/{name}: v2 rejects (4xx) more than v1: 100.0% vs 0.0%",
    ),
    Case(
        "a fast 429 to 30% of the speech requests: roll back on 4xx",
        [
            *same(HOME, 60, 4.0),
            Batch("v1", SPEECH, 60, 20.0),
            Batch("v2", SPEECH, 60, 20.0, rejected=18, reject_status=429),
        ],
        "roll back",
        {**ok(HOME), SPEECH: ("worse", ["4xx"])},
    ),
    Case(
        "20% of the speech requests fail with 500: roll back on 5xx",
        [*same(HOME, 60, 4.0), Batch("v1", SPEECH, 60, 20.0), Batch("v2", SPEECH, 60, 20.0, 12)],
        "roll back",
        {**ok(HOME), SPEECH: ("worse", ["5xx"])},
    ),
    Case(
        "v2's audio requests fall to an unmatched route: roll back",
        [
            *same(HOME, 60, 4.0),
            Batch("v1", AUDIO, 60, 6.0),
            Batch("v2", UNMATCHED, 60, 1.0, rejected=60),
        ],
        "roll back",
        ok(HOME),
        only_in={AUDIO: "one version", UNMATCHED: "worse"},
        mix_significant=True,
        reason="GET <unmatched>: only v2 serves it, 100.0% of it failed or rejected",
    ),
    Case(
        "v2 never serves a route v1 serves: hold",
        [*same(HOME, 60, 4.0), Batch("v1", AUDIO, 60, 6.0)],
        "hold",
        ok(HOME),
        only_in={AUDIO: "one version"},
        mix_significant=True,
        reason="GET /audio/{name}: only v1 serves it (60 requests): v2 never did",
    ),
    Case(
        "not the same resource mix: hold, naming the resources",
        [  # v2 serves GET / twice as often (two interleaved batches) and POST /speech less
            Batch("v1", HOME, 60, 4.0),
            Batch("v2", HOME, 60, 4.0),
            Batch("v2", HOME, 60, 4.0, start_s=0.005),
            Batch("v1", SPEECH, 60, 20.0),
            Batch("v2", SPEECH, 40, 20.0),
        ],
        "hold",
        ok(HOME, SPEECH),
        mix_significant=True,
        reason="the resource mix differs",
    ),
    Case(
        "a quarter of the speech requests retried after a 503: counted once, promote",
        [
            *same(HOME, 60, 4.0),
            Batch("v1", SPEECH, 60, 20.0),
            Batch("v2", SPEECH, 60, 20.0, retried=15),
        ],
        "promote",
        ok(HOME, SPEECH),
    ),
    Case(
        "a cold start of v2, without --warmup: not promoted",
        COLD_START,
        "roll back",
        {**ok(HOME), SPEECH: ("worse", ["latency"])},
    ),
    Case(
        "a cold start of v2, with --warmup past it: promote",
        COLD_START,
        "promote",
        ok(HOME, SPEECH),
        args=("--warmup", "395ms"),
    ),
    # Today's cases, kept.
    Case(
        "Simpson: v2 faster on each resource but serving more of the slow one: hold for the mix",
        [
            Batch("v1", HOME, 90, 4.0),
            Batch("v1", SPEECH, 30, 20.0),
            Batch("v2", HOME, 30, 3.2),
            Batch("v2", SPEECH, 90, 16.0),
        ],
        "hold",
        ok(HOME, SPEECH),
        mix_significant=True,
        reason="the resource mix differs",
    ),
    Case(
        "20 identical resources: promote (Holm over 61 tests finds no false alarm)",
        [batch for i in range(20) for batch in same(f"GET /r{i:02d}", 30, 5.0)],
        "promote",
        ok(*(f"GET /r{i:02d}" for i in range(20))),
    ),
    Case(
        "one regression among improvements: roll back",
        REGRESSION,
        "roll back",
        {**ok(HOME, AUDIO), SPEECH: ("worse", ["latency"])},
        only_in={"GET /new": "too few"},
    ),
    Case(
        "too few samples: hold",
        [*REGRESSION[:3], Batch("v2", SPEECH, 10, 20.0)],
        "hold",
        {**ok(HOME), SPEECH: ("too few", [])},
        mix_significant=True,
    ),
]


def expected(case: Case) -> dict[str, Any]:
    return {
        "verdict": case.verdict,
        "statuses": case.statuses,
        "only_in": case.only_in,
        "mix_significant": case.mix_significant,
    }


def observed(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "verdict": report["verdict"],
        "statuses": {r["resource"]: (r["status"], r["worse_in"]) for r in report["resources"]},
        "only_in": {o["resource"]: o["status"] for o in report["only_in"]},
        "mix_significant": (report["mix_test"]["p_adjusted"] or 1.0) < 0.01,
    }


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_case_gets_its_verdict_from_the_test_agent_and_from_datadog(
    empty_agent: ApmTestAgent, case: Case
) -> None:
    agent = empty_agent
    t0 = time.time() - 60.0
    emit(agent, case.plan, under_gateway=("v2",), t0=t0)
    from_agent = run_compare("--agent", agent.url, "--format", "json", *case.args)
    with FakeDatadog(case.plan, t0=t0) as fake:
        from_datadog = fake.compare("--format", "json", *case.args)

    assert from_agent.returncode == 0, from_agent.stderr
    assert from_datadog.returncode == 0, from_datadog.stderr
    agent_report, datadog_report = json.loads(from_agent.stdout), json.loads(from_datadog.stdout)
    assert observed(agent_report) == expected(case)
    assert observed(datadog_report) == expected(case)
    assert shape(datadog_report) == shape(agent_report)
    compared = ("start", "end", "seconds", "warmup_s")  # (each asked for its own "now")
    assert {k: datadog_report["window"][k] for k in compared} == {
        k: agent_report["window"][k] for k in compared
    }
    if case.reason:
        assert any(case.reason in reason for reason in agent_report["reasons"])


def test_retries_are_counted_once_by_the_last_attempt(empty_agent: ApmTestAgent) -> None:
    agent = empty_agent
    plan = [  # (GET / lasts longer: the window ends after the last retried request)
        *same(HOME, 70, 4.0),
        Batch("v1", SPEECH, 60, 20.0),
        Batch("v2", SPEECH, 60, 20.0, retried=15),
    ]
    emit(agent, plan)
    report = json.loads(run_compare("--agent", agent.url, "--format", "json").stdout)
    speech = next(r for r in report["resources"] if r["resource"] == SPEECH)
    assert speech["canary"]["requests"] == 60 and speech["canary"]["failed_5xx"] == 0
    assert "15 earlier attempts of retried requests counted once, by the last" in report["notes"]


def test_the_window_is_printed_and_since_bounds_the_test_agent(
    empty_agent: ApmTestAgent,
) -> None:
    agent = empty_agent
    now = time.time()
    emit(agent, REGRESSION, t0=now - 7200.0)  # two hours ago: a slower v2
    emit(agent, [*same(HOME, 40, 4.0), *same(SPEECH, 40, 20.0)], t0=now - 60.0)

    recent = run_compare("--agent", agent.url, "--since", "30m")
    assert recent.returncode == 0, recent.stderr
    lines = recent.stdout.splitlines()
    assert lines[1].startswith("window: ") and "(0.4s), where v1 and v2 both served" in lines[1]
    assert lines[-1].startswith("verdict: PROMOTE")

    wide = run_compare("--agent", agent.url, "--since", "3h", "--format", "json")
    everything = json.loads(wide.stdout)
    assert everything["window"]["seconds"] > 7000
    speech = next(r for r in everything["resources"] if r["resource"] == SPEECH)
    assert speech["baseline"]["requests"] == 80

    old = run_compare("--agent", agent.url, "--since", "10s")
    assert old.returncode == 1
    assert "holds no versioned text-to-speech entry spans from" in old.stderr


@pytest.mark.parametrize("mode", ["html", "text", "nope"])
def test_a_datadog_answer_of_another_shape_is_one_line(mode: str) -> None:
    with FakeDatadog(REGRESSION, f"--broken={mode}") as fake:
        result = fake.compare()
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "answered something that is not the documented Search spans shape" in lines[0]


@pytest.mark.parametrize(
    ("mode", "said", "pages"),
    [
        ("loop", "sent the same page cursor twice (after 2 pages", 2),
        ("endless", "still had more spans after 50 pages of 1000", 50),
    ],
)
def test_a_datadog_cursor_that_repeats_or_never_ends_stops(
    mode: str, said: str, pages: int
) -> None:
    with FakeDatadog(REGRESSION, f"--broken={mode}") as fake:
        result = fake.compare()
        answers = fake.answers()
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0]
    assert len(answers) == pages


def test_spans_kept_by_datadog_sampling_are_left_out_and_said() -> None:
    plan = [*same(HOME, 60, 4.0), *same(SPEECH, 60, 20.0)]
    with FakeDatadog(plan, "--sampled=20") as fake:
        result = fake.compare("--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (
        sum(r["baseline"]["requests"] + r["canary"]["requests"] for r in report["resources"]) == 220
    )
    assert (
        "20 spans kept by Datadog's diversity or flat sampling left out (retention is mixed):"
        " they are a sample, not every request"
    ) in report["notes"]


def test_probe_traffic_is_left_out_of_the_verdict(empty_agent: ApmTestAgent) -> None:
    # A 75/25 split (v1 serves three times as often), and 60 probes for each version in
    # the same period (GET /readyz, GET /healthz, and GET / from kube-probe/...): the
    # kubelet probes every pod alike. Counted, the probes alone would make the mix differ.
    agent = empty_agent
    plan = [
        *(Batch("v1", r, 60, ms, start_s=k * 0.003) for r, ms in HOME_SPEECH for k in range(3)),
        *(Batch("v2", r, 61, ms) for r, ms in HOME_SPEECH),  # (the 61st: past v1's last)
    ]
    t0 = time.time() - 60.0
    emit(agent, plan, t0=t0, probe_count=60)
    from_agent = run_compare("--agent", agent.url, "--format", "json")
    with FakeDatadog(plan, "--probes=60", t0=t0) as fake:
        from_datadog = fake.compare("--format", "json")

    probe_note = (
        " probe spans left out (GET /healthz, GET /readyz, GET /livez or User-Agent"
        " kube-probe/...): not user traffic, and as many for each version"
    )
    # (the emitter also sends one GET /healthz of each version without a user agent)
    for result, probes in ((from_agent, 122), (from_datadog, 120)):
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["verdict"] == "promote", report["reasons"]
        assert f"{probes}{probe_note}" in report["notes"]
        counts = {
            r["resource"]: (r["baseline"]["requests"], r["canary"]["requests"])
            for r in report["resources"]
        }
        assert counts == {HOME: (180, 60), SPEECH: (180, 60)}
        assert report["only_in"] == [] and report["mix_test"]["p_value"] == 1.0

    # The same counts with the probes kept: the mix test would not promote.
    with_probes = [[180 + 15, 15, 30, 180], [60 + 15, 15, 30, 60]]
    kept = chi2_contingency(with_probes, correction=False, lambda_="log-likelihood")
    assert kept.pvalue * 7 < 0.01  # Holm's smallest factor over 2 x 3 tests and the mix


def test_the_probe_rules() -> None:
    assert is_probe("GET /readyz", {}) and is_probe("GET /healthz", {})
    assert is_probe("GET <unmatched>", {"http.url": "http://10.0.0.7:8080/livez/"})
    assert is_probe("GET /", {"http.useragent": "kube-probe/1.31"})
    assert is_probe("GET /", {"http.useragent": "kube-probe/stack"})
    assert not is_probe("GET /", {"http.useragent": "python-httpx/0.28.1"})
    assert not is_probe("GET /audio/{name}", {"http.url": "http://x/audio/readyz.wav"})
