"""Datadog mode on a small real service, with the real APM test agent.

``telemetry_probe_app.py`` runs its query through aiosqlite, whose queries
execute on aiosqlite's own thread: the query span must still be a child of
the request span. Checked with both request-span middlewares (servicekit's
lean one, the default, and ddtrace's ``TraceMiddleware``).
"""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from testkit.process import ServiceProcess, free_port
from testkit.testagent import ApmTestAgent

PROBE_APP = Path(__file__).with_name("telemetry_probe_app.py")


@pytest.fixture(scope="module")
def agent() -> Iterator[ApmTestAgent]:
    with ApmTestAgent() as running:
        yield running


@pytest.mark.parametrize("middleware", ["lean", "ddtrace"])
def test_aiosqlite_query_and_otel_span_nest_under_the_request_span(
    agent: ApmTestAgent, tmp_path: Path, middleware: str
) -> None:
    port = free_port()
    env = {
        **agent.tracer_env(),
        "PORT": str(port),
        "PROBE_DB": str(tmp_path / "probe.db"),
        "PROBE_SERVICE": f"probe-{middleware}",
        "TRACE_ASGI_MIDDLEWARE": middleware,
    }
    trace_id = secrets.randbits(64) | 1
    headers = {"x-datadog-trace-id": str(trace_id), "x-datadog-parent-id": "77"}
    with ServiceProcess([sys.executable, str(PROBE_APP)], env, name="probe") as probe:
        probe.wait_http_ready(f"http://127.0.0.1:{port}/items/0")
        assert httpx.get(f"http://127.0.0.1:{port}/items/42", headers=headers).json() == {"id": 42}
        spans = agent.wait_for_spans(
            lambda got: len([s for s in got if s["trace_id"] == trace_id]) >= 3
        )
        output = probe.output()

    mine = {s["name"]: s for s in spans if s["trace_id"] == trace_id}
    request, lookup, query = mine["asgi.request"], mine["probe.lookup"], mine["sqlite.query"]
    assert request["parent_id"] == 77
    assert request["resource"] == "GET /items/{item_id}"
    assert request["meta"]["http.route"] == "/items/{item_id}"
    assert request["meta"]["http.status_code"] == "200"
    assert lookup["parent_id"] == request["span_id"]
    assert query["parent_id"] == lookup["span_id"]
    assert query["resource"] == "SELECT ?"
    for span in (request, lookup, query):
        assert (span["service"], span["meta"]["version"]) == (f"probe-{middleware}", "1.2.3")
    served = [json.loads(line) for line in output.splitlines() if '"item served"' in line]
    assert [line["dd.trace_id"] for line in served if line["item.id"] == 42] == [str(trace_id)]


@pytest.mark.parametrize("middleware", ["lean", "ddtrace"])
def test_unmatched_routes_are_one_resource_per_method_whatever_the_status(
    agent: ApmTestAgent, tmp_path: Path, middleware: str
) -> None:
    port = free_port()
    service = f"probe-unmatched-{middleware}"
    env = {
        **agent.tracer_env(),
        "PORT": str(port),
        "PROBE_DB": str(tmp_path / "probe.db"),
        "PROBE_SERVICE": service,
        "TRACE_ASGI_MIDDLEWARE": middleware,
    }
    with ServiceProcess([sys.executable, str(PROBE_APP)], env, name="probe") as probe:
        base = f"http://127.0.0.1:{port}"
        probe.wait_http_ready(f"{base}/items/0")
        assert httpx.get(f"{base}/no/such/route").status_code == 404
        assert httpx.get(f"{base}/other/path/17").status_code == 404
        assert httpx.delete(f"{base}/nothing/here").status_code == 404
        spans = agent.wait_for_spans(
            lambda got: (
                len([s for s in got if s["service"] == service and s["name"] == "asgi.request"])
                >= 4
            )
        )
    requests = [s for s in spans if s["service"] == service and s["name"] == "asgi.request"]
    unmatched = sorted(
        (s["resource"], s["meta"]["http.status_code"])
        for s in requests
        if "/items/" not in s["meta"].get("http.url", "")
    )
    assert unmatched == [
        ("DELETE <unmatched>", "404"),
        ("GET <unmatched>", "404"),
        ("GET <unmatched>", "404"),
    ]
