"""Reads what the Datadog APM test agent received and picks the spans to compare.

The test agent (``ddapm-test-agent``) answers ``GET /test/traces`` with every
trace it holds, as JSON: a list of traces, each a list of spans with
``service``, ``name``, ``resource``, ``trace_id``, ``span_id``, ``parent_id``,
``duration`` (ns), ``error`` (0/1), ``meta`` (strings) and ``metrics``.
ddtrace puts ``DD_VERSION`` in ``meta["version"]`` and ``DD_ENV`` in
``meta["env"]``.

The span compared is the *service entry span* of text-to-speech: a span of that
service whose parent is absent (a root) or belongs to another service (e.g. a
gateway that traces too). It times the whole request inside the front, which
is what Datadog's deployment comparison uses.

Probe traffic is always left out (and counted): a span whose resource, route or
URL is ``/healthz``, ``/readyz`` or ``/livez`` (``GET /readyz``, ``GET
/healthz`` ...), or whose ``http.useragent`` starts with ``kube-probe/`` (the
kubelet's, and the local stack runner's ``kube-probe/stack``). Probes are not
user traffic, and every pod is probed at the same rate whatever its weight, so
they would give v1 and v2 equal ``GET /readyz`` counts under a 70/30 split and
skew the resource-mix test.

Each entry span keeps what the verdict judges by: its HTTP status
(``meta["http.status_code"]``; without one, the error flag stands for a 5xx),
its trace id (a request retried by the gateway or the mesh is several entry
spans of one trace, counted once by :func:`last_attempts`) and its start time
(``start``, ns since the epoch: the window, :mod:`polling_client.window`).
Spans Datadog kept by diversity or flat sampling rather than by a retention
filter (``retained_by``) are left out and counted: they are not every request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from polling_client.errors import ClientError

TRACES_PATH = "/test/traces"
PROBE_SUFFIXES = ("/healthz", "/readyz", "/livez")
# A span of these kinds is a call the service made; without a parent in the
# service (a readiness check's gRPC call, its probe request untraced) it is a
# root, but not a request to the service.
OUTGOING_KINDS = ("client", "producer")
PROBE_USER_AGENT = "kube-probe/"  # the kubelet's probes (kube-probe/1.31), the stack runner's


# What a Datadog retention filter writes in ``retained_by``; the other values
# (diversity_sampling, flat_sampled) are a sample, not every request.
RETAINED_BY_FILTER = "retention_filter"


@dataclass(frozen=True)
class EntrySpan:
    version: str
    duration_ms: float
    error: bool
    resource: str
    status: int | None = None  # HTTP status; None when the span has none
    trace_id: str = ""
    start_ns: int = 0

    @property
    def outcome(self) -> str:
        """``success`` (2xx/3xx), ``4xx`` (rejected) or ``5xx`` (failed).

        Without a status, the error flag decides between success and 5xx.
        """
        if self.status is None:
            return "5xx" if self.error else "success"
        if self.status >= 500:
            return "5xx"
        if self.status >= 400:
            return "4xx"
        return "5xx" if self.error else "success"


@dataclass(frozen=True)
class Selection:
    spans: list[EntrySpan]
    unversioned: int  # entry spans without a version tag (not compared)
    probes: int  # probe entry spans left out (see the module docstring)
    sampled: int = 0  # kept by Datadog's diversity or flat sampling: left out
    filtered: int = 0  # kept by a retention filter (Datadog only)
    outgoing: int = 0  # root spans of calls the service made (span.kind client): left out


def last_attempts(spans: Iterable[EntrySpan]) -> tuple[list[EntrySpan], int]:
    """One span per (trace, resource), its last attempt; and how many earlier ones were dropped.

    Spans without a trace id are kept as they are.
    """
    last: dict[tuple[str, str], EntrySpan] = {}
    kept: list[EntrySpan] = []
    dropped = 0
    for span in spans:
        if not span.trace_id:
            kept.append(span)
            continue
        key = (span.trace_id, span.resource)
        seen = last.get(key)
        if seen is not None:
            dropped += 1
            if seen.start_ns > span.start_ns:
                continue
        last[key] = span
    return kept + sorted(last.values(), key=lambda s: s.start_ns), dropped


def fetch_traces(agent_url: str, timeout_s: float = 10.0) -> list[list[dict[str, Any]]]:
    url = agent_url.rstrip("/") + TRACES_PATH
    try:
        response = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise ClientError(
            f"cannot reach the APM test agent at {agent_url}: {type(exc).__name__}"
            " (is `ddapm-test-agent` running? `uv run stack up` starts one)"
        ) from None
    if response.status_code != 200:
        raise ClientError(
            f"{url} answered HTTP {response.status_code}: is this a ddapm-test-agent?"
        )
    try:
        body = response.json()
    except ValueError:
        raise ClientError(f"{url} did not answer JSON: is this a ddapm-test-agent?") from None
    if not isinstance(body, list) or not all(isinstance(trace, list) for trace in body):
        raise ClientError(f"{url} did not answer a list of traces")
    return body


def fetch_retention(agent_url: str, timeout_s: float = 10.0) -> float | None:
    """How long the agent keeps traces (the stack's agent, ``GET /test/retention``), if it says.

    A plain ddapm-test-agent keeps everything and has no such route: None.
    """
    try:
        response = httpx.get(agent_url.rstrip("/") + "/test/retention", timeout=timeout_s)
        seconds = response.json().get("retention_s") if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return float(seconds) if isinstance(seconds, int | float) and seconds > 0 else None


def describe_retention(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def select_entry_spans(
    traces: Iterable[list[dict[str, Any]]],
    *,
    service: str,
    env: str | None = None,
) -> Selection:
    spans: list[EntrySpan] = []
    unversioned = probes = sampled = filtered = outgoing = 0
    for trace in traces:
        service_of = {
            span.get("span_id"): span.get("service") for span in trace if isinstance(span, dict)
        }
        for span in trace:
            if not isinstance(span, dict) or span.get("service") != service:
                continue
            parent = span.get("parent_id") or 0
            if parent in service_of and service_of[parent] == service:
                continue  # an inner span of the same service
            meta = span.get("meta") or {}
            if env is not None and meta.get("env") != env:
                continue
            if str(meta.get("span.kind", "")) in OUTGOING_KINDS:
                outgoing += 1  # a call the service made, not a request to it
                continue
            resource = str(span.get("resource") or span.get("name") or "")
            if is_probe(resource, meta):
                probes += 1
                continue
            version = meta.get("version")
            if not version:
                unversioned += 1
                continue
            retained_by = span.get("retained_by")
            if retained_by:
                if retained_by != RETAINED_BY_FILTER:
                    sampled += 1
                    continue
                filtered += 1
            spans.append(
                EntrySpan(
                    version=str(version),
                    duration_ms=float(span.get("duration") or 0) / 1e6,
                    error=bool(span.get("error")),
                    resource=resource,
                    status=_status(meta.get("http.status_code")),
                    trace_id=str(span.get("trace_id") or ""),
                    start_ns=_int(span.get("start")),
                )
            )
    return Selection(spans, unversioned, probes, sampled, filtered, outgoing)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _status(value: Any) -> int | None:
    status = _int(value)
    return status if 100 <= status <= 599 else None


def is_probe(resource: str, meta: dict[str, Any]) -> bool:
    """A readiness or health probe: by its path, or by the kubelet's user agent."""
    if str(meta.get("http.useragent", "")).startswith(PROBE_USER_AGENT):
        return True
    candidates = (resource, str(meta.get("http.route", "")), str(meta.get("http.url", "")))
    return any(text.split("?")[0].rstrip("/").endswith(PROBE_SUFFIXES) for text in candidates)
