"""The stack's APM test agent drops what is older than its retention window."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import msgpack
from devstack.apm_agent import ARRIVED, trim
from testkit.process import ServiceProcess, free_port

DEADLINE_S = 60.0


def test_trim_drops_the_oldest_requests_and_keeps_unstamped_ones_with_their_neighbours() -> None:
    requests = [{ARRIVED: 1.0}, {}, {ARRIVED: 2.0}, {ARRIVED: 5.0}, {}, {ARRIVED: 6.0}]
    assert trim(requests, cutoff=3.0) == 3
    assert requests == [{ARRIVED: 5.0}, {}, {ARRIVED: 6.0}]
    assert trim(requests, cutoff=0.0) == 0
    assert trim(requests, cutoff=10.0) == 3 and requests == []


def _trace(trace_id: int) -> list[dict[str, object]]:
    return [
        {
            "trace_id": trace_id,
            "span_id": trace_id,
            "parent_id": 0,
            "name": "asgi.request",
            "service": "text-to-speech",
            "resource": "GET /",
            "type": "web",
            "start": time.time_ns(),
            "duration": 1_000_000,
            "meta": {"version": "v1"},
            "metrics": {"_dd.top_level": 1},
            "error": 0,
        }
    ]


def test_a_trace_older_than_the_window_is_dropped_while_the_agent_runs() -> None:
    port = free_port()
    otlp_http, otlp_grpc = free_port(), free_port()
    agent = ServiceProcess(
        [
            sys.executable,
            "-m",
            "devstack.apm_agent",
            "--retention=2s",
            "--host=127.0.0.1",
            f"--port={port}",
            f"--otlp-http-port={otlp_http}",
            f"--otlp-grpc-port={otlp_grpc}",
        ],
        name="apm-agent",
    )
    url = f"http://127.0.0.1:{port}"
    with agent:
        agent.wait_http_ready(f"{url}/info", timeout=DEADLINE_S)
        sent = httpx.put(
            f"{url}/v0.4/traces",
            content=msgpack.packb([_trace(1)]),
            headers={"Content-Type": "application/msgpack", "X-Datadog-Trace-Count": "1"},
        )
        assert sent.status_code == 200, sent.text
        assert len(httpx.get(f"{url}/test/session/traces").json()) == 1
        retention = httpx.get(f"{url}/test/retention").json()
        assert retention["retention_s"] == 2.0 and retention["requests"] >= 1
        deadline = time.monotonic() + DEADLINE_S
        while httpx.get(f"{url}/test/session/traces").json():
            assert time.monotonic() < deadline, "the trace was never dropped"
            time.sleep(0.2)


def test_a_bad_retention_is_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devstack.apm_agent", "--retention=soon"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("apm-test-agent: --retention 'soon': not a duration: 'soon'")
