"""OTLP mode: with Datadog tracing off and an OTLP endpoint set, the same
OpenTelemetry API spans are exported over OTLP/HTTP.

The receiver is a real HTTP server on loopback that decodes the protobuf
payload with ``opentelemetry-proto``; the traced service is a small real
process (``telemetry_probe_app.py``: Litestar + aiosqlite + httpx).
"""

from __future__ import annotations

import gzip
import json
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from testkit.process import ServiceProcess, free_port

PROBE_APP = Path(__file__).with_name("telemetry_probe_app.py")


class OtlpReceiver:
    """Collects spans POSTed to ``/v1/traces`` as flat dicts."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                receiver.add(request, self.path)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add(self, request: ExportTraceServiceRequest, path: str) -> None:
        with self.lock:
            for resource_spans in request.resource_spans:
                resource = {a.key: value_of(a.value) for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(
                            {
                                "path": path,
                                "resource": resource,
                                "name": span.name,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent_id": span.parent_span_id.hex(),
                                "attributes": {a.key: value_of(a.value) for a in span.attributes},
                            }
                        )

    def wait_for(self, names: set[str], timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if names <= {s["name"] for s in self.spans}:
                    return list(self.spans)
            time.sleep(0.05)
        raise TimeoutError(f"wanted {names}, got {[s['name'] for s in self.spans]}")


def value_of(value: AnyValue) -> Any:
    return getattr(value, value.WhichOneof("value"))


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    running = OtlpReceiver()
    running.thread.start()
    try:
        yield running
    finally:
        running.server.shutdown()
        running.server.server_close()


def test_otlp_mode_exports_request_and_custom_spans(receiver: OtlpReceiver, tmp_path: Path) -> None:
    port = free_port()
    env = {
        "DD_TRACE_ENABLED": "false",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "PORT": str(port),
        "PROBE_DB": str(tmp_path / "probe.db"),
        "PROBE_SERVICE": "probe",
        "DD_ENV": "otlp-test",
    }
    trace_id = f"{secrets.randbits(128) | 1 << 100:032x}"
    with ServiceProcess([sys.executable, str(PROBE_APP)], env, name="probe") as probe:
        probe.wait_http_ready(f"http://127.0.0.1:{port}/items/0")
        reply = httpx.get(
            f"http://127.0.0.1:{port}/relay/7",
            headers={"traceparent": f"00-{trace_id}-00000000000000ab-01"},
        )
        assert reply.json() == {"relayed": {"id": 7}}
        spans = receiver.wait_for({"GET /relay/{item_id}", "probe.lookup"})
        spans = [s for s in spans if s["trace_id"] == trace_id]
        probe.terminate()  # uvicorn re-raises SIGTERM after its graceful shutdown
        logs = [json.loads(line) for line in probe.output().splitlines() if trace_id in line]

    assert {s["path"] for s in spans} == {"/v1/traces"}
    by_name = {s["name"]: s for s in spans}
    relay, item = by_name["GET /relay/{item_id}"], by_name["GET /items/{item_id}"]
    lookup = by_name["probe.lookup"]
    # One trace across the HTTP hop: caller -> relay -> (httpx, traceparent) -> item -> lookup.
    assert relay["parent_id"] == "00000000000000ab"
    assert item["parent_id"] == relay["span_id"]
    assert lookup["parent_id"] == item["span_id"]
    assert item["attributes"]["http.route"] == "/items/{item_id}"
    assert lookup["attributes"]["probe.size"] == 5
    assert lookup["attributes"]["probe.hit"] is True
    assert lookup["attributes"]["operation.name"] == "probe.lookup"
    assert lookup["resource"]["service.name"] == "probe"
    assert lookup["resource"]["service.version"] == "1.2.3"
    assert lookup["resource"]["deployment.environment"] == "otlp-test"
    # Logs written during the request carry its (W3C hex) trace id.
    assert [line["message"] for line in logs if line["logger.name"] == "probe"] == ["item served"]
