"""Probe requests (the kubelet's `kube-probe/...`, the local stack's) are not traffic:
no access-log line and no span; the same path asked by anyone else is both."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
from servicekit.probes import is_probe
from testkit.books import running_books
from testkit.testagent import ApmTestAgent

KUBE_PROBE = {"User-Agent": "kube-probe/1.31"}


def test_is_probe_needs_a_probe_path_and_a_probe_agent() -> None:
    assert is_probe("/readyz", [(b"user-agent", b"kube-probe/1.31")])
    assert is_probe("/healthz", [(b"host", b"x"), (b"user-agent", b"kube-probe/stack")])
    assert not is_probe("/readyz", [(b"user-agent", b"curl/8.5")])
    assert not is_probe("/books", [(b"user-agent", b"kube-probe/1.31")])
    assert not is_probe("/readyz", [])


def _traced(trace_id: int) -> dict[str, str]:
    return {"x-datadog-trace-id": str(trace_id), "x-datadog-parent-id": "1"}


def test_probe_requests_get_no_log_line_and_no_span(tmp_path: Path) -> None:
    ids = random.sample(range(1, 2**62), 8)
    probes, curl, books = ids[:6], ids[6], ids[7]
    with ApmTestAgent() as agent:
        env = {**agent.tracer_env(), "DD_SERVICE": "books"}
        with running_books(tmp_path / "books.db", env=env) as server:
            mark = len(server.process.output())  # after the harness's own readiness wait
            for n, trace_id in enumerate(probes):
                path = "/readyz" if n % 2 else "/healthz"
                headers = KUBE_PROBE | _traced(trace_id)
                assert httpx.get(f"{server.url}{path}", headers=headers).status_code == 200
            # A person's curl of the same path, then a request of the API: both traced.
            assert httpx.get(f"{server.url}/readyz", headers=_traced(curl)).status_code == 200
            assert httpx.get(f"{server.url}/books", headers=_traced(books)).status_code == 200
            spans = agent.wait_for_spans(lambda got: {curl, books} <= {s["trace_id"] for s in got})
            # The probes were answered before those two: a span of theirs would be there too
            # (one tracer, one writer, in order).
            output = server.process.output()[mark:]
    seen = {s["trace_id"]: s["resource"] for s in spans if s["name"] == "asgi.request"}
    assert seen[curl] == "GET /readyz" and seen[books] == "GET /books"
    assert not set(probes) & set(seen), "a probe request got a span"
    assert output.count("GET /readyz 200") == 1, output
    assert "GET /healthz" not in output
