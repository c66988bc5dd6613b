"""The Datadog APM test agent (``ddapm-test-agent``) as a real local process.

For tests and benchmarks: a Datadog agent stand-in that accepts traces from
ddtrace on a loopback port and answers what it received through its
``/test/session/*`` API. (The local stack runs the same ``ddapm-test-agent``
program itself, from :mod:`devstack.services`; it does not use this module.)

    with ApmTestAgent() as agent:
        env = {**agent.tracer_env(), "PORT": "9000"}
        ...
        spans = agent.wait_for_spans(lambda spans: len(spans) >= 3)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from testkit.process import ServiceProcess, Started, free_port

Span = dict[str, Any]


class ApmTestAgent(Started):
    """Starts ``ddapm-test-agent`` on free loopback ports (trace + its OTLP ports)."""

    def __init__(self, port: int | None = None, *, cwd: Path | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        otlp_http, otlp_grpc = free_port(), free_port()
        while otlp_grpc == otlp_http:
            otlp_grpc = free_port()
        self.process = ServiceProcess(
            [
                "ddapm-test-agent",
                "--host=127.0.0.1",
                f"--port={self.port}",
                f"--otlp-http-port={otlp_http}",
                f"--otlp-grpc-port={otlp_grpc}",
                "--log-level=WARNING",
            ],
            name="ddapm-test-agent",
            cwd=cwd,
        )

    def start(self, timeout: float = 30.0) -> ApmTestAgent:
        self.process.start()
        self.process.wait_http_ready(f"{self.url}/info", timeout=timeout)
        return self

    def stop(self) -> None:
        self.process.stop()

    def tracer_env(self) -> dict[str, str]:
        """Environment for a traced service that reports to this agent, flushing quickly."""
        return {
            "DD_TRACE_ENABLED": "true",
            "DD_TRACE_AGENT_URL": self.url,
            "DD_TRACE_WRITER_INTERVAL_SECONDS": "0.2",
            "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
            "DD_REMOTE_CONFIGURATION_ENABLED": "false",
        }

    def start_session(self) -> None:
        """Forget what was received so far (for the next :meth:`spans` call)."""
        httpx.get(f"{self.url}/test/session/start", timeout=5.0).raise_for_status()

    def traces(self) -> list[list[Span]]:
        """Traces received since the last session start, as lists of span dicts."""
        reply = httpx.get(f"{self.url}/test/session/traces", timeout=5.0)
        reply.raise_for_status()
        traces: list[list[Span]] = reply.json()
        return traces

    def spans(self) -> list[Span]:
        return [span for trace in self.traces() for span in trace]

    def requests(self) -> list[dict[str, Any]]:
        """Every request a tracer sent (traces, stats, telemetry...) since the session start."""
        reply = httpx.get(f"{self.url}/test/session/requests", timeout=5.0)
        reply.raise_for_status()
        received: list[dict[str, Any]] = reply.json()
        return received

    def wait_for_spans(
        self, done: Callable[[list[Span]], bool], timeout: float = 20.0
    ) -> list[Span]:
        """Poll until ``done(spans)`` is true; return the spans (or raise with what arrived)."""
        deadline = time.monotonic() + timeout
        spans: list[Span] = []
        while time.monotonic() < deadline:
            spans = self.spans()
            if done(spans):
                return spans
            time.sleep(0.1)
        summary = sorted({(s.get("service"), s.get("name"), s.get("resource")) for s in spans})
        raise TimeoutError(f"spans not complete after {timeout}s; got {summary}")
