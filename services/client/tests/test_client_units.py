"""Pure parts of the client: percentiles, pacing, mix, tally, span selection, flags."""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
import pytest
from polling_client.cli import parse_duration
from polling_client.live import LiveDisplay
from polling_client.ratelimit import RateLimiter
from polling_client.stats import Reservoir, percentile
from polling_client.tally import BOOKS_ROW, NO_VERSION_ROW, Outcome, Tally
from polling_client.traces import select_entry_spans
from polling_client.workload import MixSchedule, Operation, parse_mix


@pytest.mark.parametrize("q", [0, 1, 25, 50, 90, 95, 99, 100])
def test_percentile_matches_numpy_linear(q: float) -> None:
    values = [float((i * 7919) % 1000) / 7.0 for i in range(1, 238)]
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_of_nothing_is_nan() -> None:
    assert percentile([], 50) != percentile([], 50)


def test_reservoir_keeps_everything_below_capacity_and_is_bounded_above() -> None:
    small = Reservoir(capacity=100, seed=1)
    for value in range(50):
        small.add(float(value))
    assert small.values() == [float(v) for v in range(50)]
    big = Reservoir(capacity=100, seed=1)
    for value in range(10_000):
        big.add(float(value))
    kept = big.values()
    assert len(kept) == 100 and big.seen == 10_000
    assert max(kept) > 5_000  # later values do get in: a sample of everything


class FakeClock:
    """Time that moves only when the limiter sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_rate_limiter_ticks_on_an_exact_schedule() -> None:
    clock = FakeClock()
    limiter = RateLimiter(50.0, clock=clock, sleep=clock.sleep)
    ticks = []
    for _ in range(100):
        await limiter.acquire()
        ticks.append(clock.now)
    gaps = np.diff(ticks)
    assert gaps == pytest.approx(np.full(99, 0.02))
    assert ticks[-1] - ticks[0] == pytest.approx(99 / 50.0)


async def test_rate_limiter_makes_up_at_most_burst_missed_ticks() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10.0, burst=3, clock=clock, sleep=clock.sleep)
    await limiter.acquire()
    clock.now += 5.0  # the caller stalled for 50 ticks
    start_sleeps = len(clock.sleeps)
    for _ in range(3):
        await limiter.acquire()
    assert len(clock.sleeps) == start_sleeps  # 3 ticks at once: the burst
    await limiter.acquire()
    assert clock.sleeps[-1] == pytest.approx(0.1)  # then back to the pace


def test_rate_limiter_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)
    with pytest.raises(ValueError):
        RateLimiter(1, burst=0)


def test_mix_schedule_gives_the_exact_mix_in_every_window() -> None:
    weights = parse_mix("root=6,create_book=1,list_books=1,speech=1,audio=1")
    schedule = MixSchedule(weights)
    for _ in range(5):
        window = Counter(schedule.next() for _ in range(10))
        assert window == Counter(weights)
    sequence = [schedule.next() for _ in range(40)]
    longest_root_run = max(
        len(run) for run in "".join("r" if op is Operation.ROOT else " " for op in sequence).split()
    )
    assert longest_root_run <= 3  # spread out, not six roots in a row
    first = sequence[:10]
    # a user creates a book before asking for speech, and speech before audio
    assert first.index(Operation.CREATE_BOOK) < first.index(Operation.SPEECH)
    assert first.index(Operation.SPEECH) < first.index(Operation.AUDIO)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("root", "not name=weight"),
        ("root=1,fly=2", "unknown operation 'fly'"),
        ("root=-1", "must be an integer"),
        ("root=0", "at least one"),
        ("root=1,root=2", "given twice"),
    ],
)
def test_parse_mix_says_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_mix(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 30.0), ("30s", 30.0), ("1.5m", 90.0), ("2h", 7200.0), ("250ms", 0.25)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "5 days", "0", "-3s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_tally_rows_shares_and_errors() -> None:
    tally = Tally()
    for i in range(7):
        tally.record(Outcome(Operation.ROOT, 0.010 + i / 1000, version="v1", status=200))
    for _ in range(3):
        tally.record(Outcome(Operation.SPEECH, 0.050, version="v2", status=201))
    tally.record(Outcome(Operation.SPEECH, 0.5, version="v2", status=503, error="HTTP 503"))
    tally.record(Outcome(Operation.AUDIO, 1.0, error="ConnectError"))
    tally.record(Outcome(Operation.CREATE_BOOK, 0.002, status=201))
    summary = tally.summary(elapsed_s=2.0)
    assert [row.name for row in summary.rows] == ["v1", "v2", NO_VERSION_ROW, BOOKS_ROW]
    v1, v2, none, books = summary.rows
    assert (v1.requests, v2.requests, none.requests, books.requests) == (7, 4, 1, 1)
    assert v1.share == pytest.approx(7 / 12) and v2.share == pytest.approx(4 / 12)
    assert books.share is None
    assert v2.errors == 1 and none.errors == 1 and summary.errors == 2
    assert summary.error_reasons == {"HTTP 503": 1, "ConnectError": 1}
    assert v1.p50_ms == pytest.approx(13.0)
    assert summary.rate == pytest.approx(6.5)


def span(span_id: int, parent: int, service: str, **extra: object) -> dict[str, object]:
    meta = extra.pop("meta", {"version": "v1", "env": "local"})
    return {
        "span_id": span_id,
        "parent_id": parent,
        "trace_id": 1,
        "service": service,
        "name": "request",
        "resource": extra.pop("resource", "POST /speech"),
        "duration": extra.pop("duration", 5_000_000),
        "error": extra.pop("error", 0),
        "meta": meta,
    }


def test_entry_spans_are_roots_or_children_of_another_service() -> None:
    traces = [
        [span(1, 0, "text-to-speech"), span(2, 1, "text-to-speech")],  # root + inner
        [span(10, 0, "gateway", meta={}), span(11, 10, "text-to-speech", error=1)],
        [span(20, 999, "text-to-speech", meta={"version": "v2", "env": "local"})],  # remote parent
        [span(30, 0, "books")],
        [span(40, 0, "text-to-speech", resource="GET /healthz")],
        [span(50, 0, "text-to-speech", meta={"env": "local"})],
        [span(60, 0, "text-to-speech", meta={"version": "v2", "env": "prod"})],
        # a readiness check's gRPC call, its untraced probe request not a parent
        [span(70, 0, "text-to-speech", meta={"version": "v1", "span.kind": "client"})],
    ]
    selection = select_entry_spans(traces, service="text-to-speech")
    assert [(s.version, s.error) for s in selection.spans] == [
        ("v1", False),
        ("v1", True),
        ("v2", False),
        ("v2", False),
    ]
    assert selection.spans[0].duration_ms == pytest.approx(5.0)
    assert selection.probes == 1 and selection.unversioned == 1 and selection.outgoing == 1
    local = select_entry_spans(traces, service="text-to-speech", env="local")
    assert len(local.spans) == 3


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_line_rewrites_in_place_on_a_terminal_and_prints_lines_otherwise() -> None:
    tally = Tally()
    tally.record(Outcome(Operation.ROOT, 0.01, version="v1", status=200))
    tally.record(Outcome(Operation.ROOT, 0.01, version="v2", status=503, error="HTTP 503"))
    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        display = LiveDisplay(stream)
        display.update(tally, 2.0)
        display.update(tally, 4.0)
        display.finish()
    assert terminal.getvalue().count("\r") == 2 and terminal.getvalue().endswith("\n")
    lines = pipe.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in pipe.getvalue()
    assert "2 req 0.5/s" in lines[1] and "errors 1 (50.0%)" in lines[1]
    assert "v1 1 (50%)" in lines[1] and "v2 1 (50%)" in lines[1]


@pytest.mark.parametrize(
    ("value", "label"),
    [(0.001, "0.001"), (0.45, "0.45"), (3.5, "3.5"), (20.0, "20"), (250.0, "250"), (1500, "1500")],
)
def test_log_axis_labels_are_plain_milliseconds(value: float, label: str) -> None:
    from polling_client.plot import milliseconds

    assert milliseconds(value) == label


@pytest.mark.parametrize(("low", "high"), [(0.4, 0.67), (3.0, 6.0), (20.0, 48.0), (0.5, 4000.0)])
def test_a_panel_has_distinct_readable_tick_labels(low: float, high: float) -> None:
    import matplotlib.pyplot as plt
    from polling_client.plot import _panel
    from polling_client.verdict import ResourceComparison, Status, TestResults, VersionStats

    values = [low + (high - low) * i / 99 for i in range(100)]
    item = ResourceComparison(
        "GET /",
        VersionStats("v1", values, 0),
        VersionStats("v2", values, 0),
        TestResults(),
        Status.OK,
    )
    figure, axis = plt.subplots()
    try:
        _panel(axis, item)
        figure.canvas.draw()
        left, right = axis.get_xlim()
        labels = [
            t.get_text()
            for t in axis.get_xticklabels()
            if t.get_text() and left <= t.get_position()[0] <= right
        ]
    finally:
        plt.close(figure)
    assert len(labels) >= 2
    assert len(labels) == len(set(labels)), labels  # no two ticks print the same text
    assert not any("e" in label for label in labels), labels  # never 3e-01


def test_the_stack_agent_s_retention_is_read_and_said(tmp_path) -> None:
    """The stack's agent answers GET /test/retention; a plain ddapm-test-agent does not."""
    import sys

    from polling_client.traces import describe_retention, fetch_retention
    from testkit.process import ServiceProcess, free_port

    assert describe_retention(600) == "10m" and describe_retention(7200) == "2h"
    assert describe_retention(45) == "45s"
    port = free_port()
    agent = ServiceProcess(
        [
            sys.executable,
            "-m",
            "devstack.apm_agent",
            "--retention=90s",
            "--host=127.0.0.1",
            f"--port={port}",
            f"--otlp-http-port={free_port()}",
            f"--otlp-grpc-port={free_port()}",
        ],
        name="apm-agent",
    )
    with agent:
        agent.wait_http_ready(f"http://127.0.0.1:{port}/info")
        assert fetch_retention(f"http://127.0.0.1:{port}") == 90.0
    assert fetch_retention(f"http://127.0.0.1:{free_port()}", timeout_s=2.0) is None
