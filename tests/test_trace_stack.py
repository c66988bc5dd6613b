"""One request through the running services is one Datadog trace.

Real processes on loopback: the Datadog APM test agent (``ddapm-test-agent``),
books, tts-backend (eSpeak NG) and both text-to-speech fronts, all traced by
``servicekit.telemetry``. Requests carry a W3C ``traceparent`` with a trace id
chosen by the test, so each test finds its own trace among everything the
agent received.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from testkit.books import BooksServer, running_books
from testkit.process import REPO_ROOT, ServiceProcess, console_script, free_port
from testkit.testagent import ApmTestAgent, Span

ENV = "trace-test"


@dataclass
class Stack:
    agent: ApmTestAgent
    books: BooksServer
    backend: ServiceProcess
    fronts: dict[str, tuple[ServiceProcess, str]]  # "v1"/"v2" -> (process, url)
    gateway_url: str
    book_id: int


def start_stack(tmp: Path, env: dict[str, str], agent: ApmTestAgent, stack: ExitStack) -> Stack:
    books = stack.enter_context(running_books(tmp / "books.db", env=env))
    backend_port = free_port()
    backend = stack.enter_context(
        ServiceProcess(["tts-backend"], {**env, "PORT": str(backend_port), "TTS_WORKERS": "1"})
    )
    front_env = {
        **env,
        "BOOKS_URL": books.url,
        "TTS_BACKEND_ADDR": f"127.0.0.1:{backend_port}",
        "AUDIO_DIR": str(tmp / "audio"),
    }
    fronts: dict[str, tuple[ServiceProcess, str]] = {}
    for version in ("v1", "v2"):
        port = free_port()
        front = ServiceProcess([f"tts-{version}"], {**front_env, "PORT": str(port)})
        fronts[version] = (stack.enter_context(front), f"http://127.0.0.1:{port}")
    gateway_port = free_port()
    upstreams = {
        "books": books.url,
        **{f"text-to-speech/{v}": url for v, (_, url) in fronts.items()},
    }
    gateway = ServiceProcess(
        ["local-gateway"],
        {
            **env,
            "PORT": str(gateway_port),
            "GATEWAY_ISTIO_DIR": str(REPO_ROOT / "k8s" / "istio"),
            "GATEWAY_UPSTREAMS": ",".join(f"{k}={u}" for k, u in upstreams.items()),
        },
    )
    stack.enter_context(gateway)
    backend.wait_grpc_ready(f"127.0.0.1:{backend_port}")
    for front, url in fronts.values():
        front.wait_http_ready(f"{url}/readyz")
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    gateway.wait_http_ready(f"{gateway_url}/books")
    created = httpx.post(f"{books.url}/books", json={"title": "Dune", "author": "Frank Herbert"})
    assert created.status_code == 201, created.text
    return Stack(agent, books, backend, fronts, gateway_url, created.json()["id"])


@pytest.fixture(scope="module")
def agent() -> Iterator[ApmTestAgent]:
    with ApmTestAgent() as running:
        yield running


@pytest.fixture(scope="module")
def traced(agent: ApmTestAgent, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {**agent.tracer_env(), "DD_ENV": ENV}
    with ExitStack() as stack:
        yield start_stack(tmp_path_factory.mktemp("traced"), env, agent, stack)


def new_traceparent() -> tuple[int, int, str]:
    """A caller's W3C trace context: (trace id, parent span id, header value)."""
    trace_id = secrets.randbits(128) | (1 << 100)
    span_id = secrets.randbits(63) | 1
    return trace_id, span_id, f"00-{trace_id:032x}-{span_id:016x}-01"


def trace_spans(agent: ApmTestAgent, trace_id: int, services: set[str]) -> list[Span]:
    """The spans of one trace (by its low 64 bits), once every service has reported."""
    low = trace_id & (2**64 - 1)

    def of_trace(spans: list[Span]) -> list[Span]:
        return [s for s in spans if s["trace_id"] == low]

    spans = agent.wait_for_spans(lambda got: {s["service"] for s in of_trace(got)} >= services)
    # The writer flushes per process; give stragglers of the same trace one more poll.
    return of_trace(agent.wait_for_spans(lambda got: len(of_trace(got)) >= len(of_trace(spans))))


def only(spans: list[Span], **match: Any) -> Span:
    found = [s for s in spans if all(s.get(k) == v for k, v in match.items())]
    assert len(found) == 1, f"expected one span {match}, got {[describe(s) for s in found]}"
    return found[0]


def describe(span: Span) -> str:
    return f"{span['service']}:{span['name']}:{span['resource']}"


def speak(stack: Stack, version: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    trace_id, _, traceparent = new_traceparent()
    return trace_id, speak_with(stack, version, body, traceparent)


def speak_with(
    stack: Stack, version: str, body: dict[str, Any], traceparent: str
) -> dict[str, Any]:
    _, url = stack.fronts[version]
    reply = httpx.post(f"{url}/speech", json=body, headers={"traceparent": traceparent}, timeout=60)
    assert reply.status_code == 201, reply.text
    reply_body: dict[str, Any] = reply.json()
    return reply_body


def test_one_request_is_one_trace_across_http_and_grpc(traced: Stack) -> None:
    trace_id, caller_span_id, traceparent = new_traceparent()
    speak_with(traced, "v1", {"book_id": traced.book_id}, traceparent)
    spans = trace_spans(traced.agent, trace_id, {"text-to-speech", "books", "tts-backend"})
    by_id = {s["span_id"]: s for s in spans}

    # One root in this trace: the front's request span, child of the caller's traceparent.
    roots = [s for s in spans if s["parent_id"] not in by_id]
    assert [describe(s) for s in roots] == ["text-to-speech:asgi.request:POST /speech"]
    assert roots[0]["parent_id"] == caller_span_id

    # Unified service tagging on every span.
    versions = {"text-to-speech": "v1", "books": "0.1.0", "tts-backend": "0.1.0"}
    for span in spans:
        assert span["meta"].get("env") == ENV, describe(span)
        assert span["meta"].get("version") == versions[span["service"]], describe(span)

    # HTTP hop: books' request span is a child of the front's outgoing httpx span.
    books_request = only(spans, service="books", name="asgi.request")
    assert books_request["resource"] == "GET /books/{book_id}"
    assert by_id[books_request["parent_id"]]["name"] == "http.request"
    assert by_id[books_request["parent_id"]]["service"] == "text-to-speech"
    # Books reads by id on its event loop: the query is a tag of the request span,
    # not a span of its own (servicekit.telemetry.sqlite).
    assert books_request["meta"]["db.statement"] == "SELECT doc FROM books WHERE id = ?"
    assert [s for s in spans if s["service"] == "books" and s["name"] == "sqlite.query"] == []

    # gRPC hop: the backend's server span is a child of the front's grpc client span.
    backend = only(spans, service="tts-backend", name="grpc")
    assert backend["resource"] == "/tts.v1.TextToSpeech/Synthesize"
    client_call = by_id[backend["parent_id"]]
    assert (client_call["service"], client_call["name"]) == ("text-to-speech", "grpc")

    # OpenTelemetry API spans, mapped by ddtrace, with their attributes.
    request = roots[0]
    fetch = only(spans, name="book.fetch")
    assert fetch["parent_id"] == request["span_id"]
    assert by_id[books_request["parent_id"]]["parent_id"] == fetch["span_id"]
    synthesis = only(spans, name="tts.synthesize")
    assert client_call["parent_id"] == synthesis["span_id"]
    assert synthesis["meta"]["tts.engine"] == "espeak"
    assert synthesis["metrics"]["tts.text.length"] == len("Dune by Frank Herbert.")
    write = only(spans, name="audio.write")
    assert write["metrics"]["tts.audio.duration_s"] > 0


def test_the_local_gateway_joins_the_trace_between_caller_and_front(traced: Stack) -> None:
    trace_id, caller_span_id, traceparent = new_traceparent()
    reply = httpx.post(
        f"{traced.gateway_url}/speech",
        json={"text": "through the gateway"},
        headers={"traceparent": traceparent, "x-canary": "v2"},
        timeout=60,
    )
    assert reply.status_code == 201, reply.text
    spans = trace_spans(traced.agent, trace_id, {"local-gateway", "text-to-speech", "tts-backend"})
    by_id = {s["span_id"]: s for s in spans}
    gateway = only(spans, service="local-gateway", name="aiohttp.request", parent_id=caller_span_id)
    assert gateway["resource"] == "POST /speech"
    front = only(spans, service="text-to-speech", name="asgi.request")
    assert front["meta"]["version"] == "v2"
    proxied = by_id[front["parent_id"]]
    assert (proxied["service"], proxied["parent_id"]) == ("local-gateway", gateway["span_id"])


def test_a_client_poll_request_starts_the_trace(traced: Stack) -> None:
    env = {**os.environ, **traced.agent.tracer_env(), "DD_ENV": ENV}
    command = [console_script("client"), "poll", "--gateway", traced.gateway_url]
    command += ["--count", "1", "--mix", "root=1", "--canary", "v2", "--format", "json"]
    done = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    spans = traced.agent.wait_for_spans(
        lambda got: (
            any(s["service"] == "client" for s in got)
            and {"local-gateway", "text-to-speech"}
            <= {s["service"] for s in got if s["trace_id"] == client_root(got)["trace_id"]}
        )
    )
    root = client_root(spans)
    assert (root["parent_id"], root["meta"]["env"], root["meta"]["version"]) == (0, ENV, "0.1.0")
    trace = {s["span_id"]: s for s in spans if s["trace_id"] == root["trace_id"]}
    gateway = only(list(trace.values()), service="local-gateway", resource="GET /")
    assert trace[gateway["parent_id"]]["service"] == "client"
    front = only(list(trace.values()), service="text-to-speech", name="asgi.request")
    assert (front["resource"], front["meta"]["version"]) == ("GET /", "v2")


def client_root(spans: list[Span]) -> Span:
    roots = [s for s in spans if s["service"] == "client" and s["parent_id"] == 0]
    return roots[-1] if roots else {"trace_id": None}


def test_v1_and_v2_are_one_service_with_two_versions(traced: Stack) -> None:
    seen = {}
    for version in ("v1", "v2"):
        trace_id, body = speak(traced, version, {"text": f"compare {version}"})
        assert body["version"] == version
        spans = trace_spans(traced.agent, trace_id, {"text-to-speech", "tts-backend"})
        request = only(spans, name="asgi.request", service="text-to-speech")
        seen[version] = (request["service"], request["meta"]["version"])
    assert seen == {"v1": ("text-to-speech", "v1"), "v2": ("text-to-speech", "v2")}


def test_v2_cache_lookup_records_miss_then_hit(traced: Stack) -> None:
    body = {"text": "cached twice"}
    first_id, first = speak(traced, "v2", body)
    second_id, second = speak(traced, "v2", body)
    assert (first["cached"], second["cached"]) == (False, True)
    miss = trace_spans(traced.agent, first_id, {"text-to-speech", "tts-backend"})
    lookups = [s for s in miss if s["name"] == "audio.cache_lookup"]
    assert lookups and all(s["metrics"]["tts.cache.hit"] == 0 for s in lookups)
    hit = trace_spans(traced.agent, second_id, {"text-to-speech"})
    assert only(hit, name="audio.cache_lookup")["metrics"]["tts.cache.hit"] == 1
    assert not [s for s in hit if s["service"] == "tts-backend" or s["name"] == "tts.synthesize"]


def test_log_lines_during_a_request_carry_its_trace_id(traced: Stack) -> None:
    trace_id, _ = speak(traced, "v1", {"book_id": traced.book_id})
    trace_spans(traced.agent, trace_id, {"text-to-speech", "books", "tts-backend"})
    wanted = f"{trace_id:032x}"
    front, _ = traced.fronts["v1"]
    for process, service, version in (
        (front, "text-to-speech", "v1"),
        (traced.books.process, "books", "0.1.0"),
    ):
        lines = [json.loads(line) for line in process.output().splitlines() if wanted in line]
        access = [line for line in lines if line["logger.name"] == "servicekit.access"]
        assert len(access) == 1, lines
        assert (access[0]["dd.service"], access[0]["dd.env"], access[0]["dd.version"]) == (
            service,
            ENV,
            version,
        )
        assert access[0]["http.status_code"] in (200, 201)
        assert all(line["dd.trace_id"] == wanted and line["dd.span_id"] for line in lines)
    synthesis_log = [
        json.loads(line)
        for line in front.output().splitlines()
        if '"backend synthesis"' in line and wanted in line
    ]
    assert len(synthesis_log) == 1


def test_books_joins_b3_traces_and_names_unknown_routes_unmatched(traced: Stack) -> None:
    trace_id = secrets.randbits(64) | 1
    headers = {
        "x-b3-traceid": f"{trace_id:016x}",
        "x-b3-spanid": "00000000000000aa",
        "x-b3-sampled": "1",
    }
    assert httpx.get(f"{traced.books.url}/no/such/route", headers=headers).status_code == 404
    (span,) = trace_spans(traced.agent, trace_id, {"books"})
    assert (span["resource"], span["parent_id"]) == ("GET <unmatched>", 0xAA)
    assert span["meta"]["http.status_code"] == "404"


def test_with_tracing_disabled_services_work_and_send_nothing(
    agent: ApmTestAgent, tmp_path: Path
) -> None:
    env = {"DD_TRACE_ENABLED": "false", "DD_TRACE_AGENT_URL": agent.url, "DD_ENV": ENV}
    with ExitStack() as stack:
        off = start_stack(tmp_path, env, agent, stack)
        agent.start_session()
        _, body = speak(off, "v1", {"book_id": off.book_id})
        assert body["bytes"] > 0
        # Stop the services: a tracer would flush whatever it still held on exit.
        front, _ = off.fronts["v1"]
        for process in (front, off.books.process, off.backend):
            assert process.terminate() == 0
        assert '"dd.trace_id"' not in front.output()
    assert [request["url"] for request in agent.requests()] == []
