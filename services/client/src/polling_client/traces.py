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
is what Datadog's deployment comparison uses. Health probes are left out by
default: they are not user traffic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from polling_client.errors import ClientError

TRACES_PATH = "/test/traces"
PROBE_SUFFIXES = ("/healthz", "/readyz", "/livez")


@dataclass(frozen=True)
class EntrySpan:
    version: str
    duration_ms: float
    error: bool
    resource: str


@dataclass(frozen=True)
class Selection:
    spans: list[EntrySpan]
    unversioned: int  # entry spans without a version tag (not compared)
    probes: int  # health-probe entry spans left out


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


def select_entry_spans(
    traces: Iterable[list[dict[str, Any]]],
    *,
    service: str,
    env: str | None = None,
    include_probes: bool = False,
) -> Selection:
    spans: list[EntrySpan] = []
    unversioned = 0
    probes = 0
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
            resource = str(span.get("resource") or span.get("name") or "")
            if not include_probes and _is_probe(resource, meta):
                probes += 1
                continue
            version = meta.get("version")
            if not version:
                unversioned += 1
                continue
            spans.append(
                EntrySpan(
                    version=str(version),
                    duration_ms=float(span.get("duration") or 0) / 1e6,
                    error=bool(span.get("error")),
                    resource=resource,
                )
            )
    return Selection(spans=spans, unversioned=unversioned, probes=probes)


def _is_probe(resource: str, meta: dict[str, Any]) -> bool:
    candidates = (resource, str(meta.get("http.route", "")), str(meta.get("http.url", "")))
    return any(text.rstrip("/").endswith(PROBE_SUFFIXES) for text in candidates)
