"""Probe requests (the kubelet's `kube-probe/...`, the local stack's) are not traffic:
no access-log line and no span; the same path asked by anyone else is both."""

from __future__ import annotations

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


def test_probe_requests_get_no_log_line_and_no_span(tmp_path: Path) -> None:
    with ApmTestAgent() as agent:
        env = {**agent.tracer_env(), "DD_SERVICE": "books"}
        with running_books(tmp_path / "books.db", env=env) as server:
            agent.start_session()
            mark = len(server.process.output())  # after the harness's own readiness wait
            for _ in range(3):
                assert httpx.get(f"{server.url}/readyz", headers=KUBE_PROBE).status_code == 200
                assert httpx.get(f"{server.url}/healthz", headers=KUBE_PROBE).status_code == 200
            assert httpx.get(f"{server.url}/readyz").status_code == 200  # a person's curl
            assert httpx.get(f"{server.url}/books").status_code == 200
            spans = agent.wait_for_spans(
                lambda got: (
                    {"GET /books", "GET /readyz"}
                    <= {str(s["resource"]) for s in got if s["name"] == "asgi.request"}
                )
            )
            output = server.process.output()[mark:]
    resources = sorted(str(s["resource"]) for s in spans if s["name"] == "asgi.request")
    assert resources == ["GET /books", "GET /readyz"], resources
    assert output.count("GET /readyz 200") == 1, output
    assert "GET /healthz" not in output
