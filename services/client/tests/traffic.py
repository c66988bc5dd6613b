"""One synthetic traffic shape, fed to every source of `client compare`.

A plan is a list of :class:`Batch` (version, resource, count, latency, how
many answers fail with a 5xx, how many are rejected with a 4xx, how many were
retried). Durations are deterministic, spread from L to 1.5 L; the first
``errors`` requests of a batch answer 500, the next ``rejected`` answer
``reject_status``, the rest 200. Request ``i`` of a batch starts at
``t0 + start_s + i * SPACING_S``, so every source sees the same absolute times
and the window where both versions served is known. A retried request is two
entry spans of one trace (under a gateway span): a 503 attempt, then the
answer. Probe traffic (``probes``: the same number for each version, as
the kubelet probes every pod alike) comes on top. ``emit_traces.py`` sends a
plan as real ddtrace spans to an APM test agent; ``fake_datadog.py`` serves
the same plan as Datadog's Search spans API would. The same plan must give
the same verdict from both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass

SPACING_S = 0.01  # between two requests of a batch
RETRY_GAP_S = 0.002  # between a failed attempt and its retry


@dataclass(frozen=True)
class Batch:
    version: str
    resource: str
    count: int
    latency_ms: float
    errors: int = 0  # 500
    rejected: int = 0  # reject_status
    reject_status: int = 404
    retried: int = 0  # the last `retried` requests had a 503 attempt before
    start_s: float = 0.0  # offset of the first request from the plan's t0


@dataclass(frozen=True)
class Request:
    start_s: float  # from the plan's t0
    duration_s: float
    status: int
    retried: bool  # a 503 attempt of RETRY_GAP_S came first, in the same trace


def duration_s(latency_ms: float, index: int) -> float:
    return latency_ms / 1000.0 * (1.0 + 0.5 * ((index * 37) % 100) / 100.0)


def requests(batch: Batch) -> Iterator[Request]:
    for i in range(batch.count):
        if i < batch.errors:
            status = 500
        elif i < batch.errors + batch.rejected:
            status = batch.reject_status
        else:
            status = 200
        yield Request(
            start_s=batch.start_s + i * SPACING_S,
            duration_s=duration_s(batch.latency_ms, i),
            status=status,
            retried=i >= batch.count - batch.retried,
        )


@dataclass(frozen=True)
class Probe:
    start_s: float  # from the plan's t0
    resource: str
    user_agent: str


# What probes a front: the kubelet (readiness and liveness), the local stack's
# runner, and a kubelet probe on a path that is not a probe path (only its user
# agent tells it).
PROBE_KINDS = (
    ("GET /readyz", "kube-probe/1.31"),
    ("GET /healthz", "kube-probe/1.31"),
    ("GET /readyz", "kube-probe/stack"),
    ("GET /", "kube-probe/1.31"),
)
PROBE_SPACING_S = 0.01


def probes(count: int) -> Iterator[Probe]:
    """``count`` probe requests of one version, every PROBE_SPACING_S from the plan's t0."""
    for i in range(count):
        resource, user_agent = PROBE_KINDS[i % len(PROBE_KINDS)]
        yield Probe(i * PROBE_SPACING_S, resource, user_agent)


def dumps(plan: list[Batch]) -> str:
    return json.dumps([asdict(batch) for batch in plan])


def loads(text: str) -> list[Batch]:
    return [Batch(**item) for item in json.loads(text)]


# v2 regresses on POST /speech (x1.6, errors) and improves on GET / and the
# audio downloads; GET /new is only in v2; GET /books is another service.
REGRESSION = [
    Batch("v1", "GET /", 40, 4.0),
    Batch("v2", "GET /", 40, 3.0),
    Batch("v1", "POST /speech", 40, 20.0),
    Batch("v2", "POST /speech", 40, 32.0, errors=4),
    Batch("v1", "GET /audio/{name}", 40, 6.0),
    Batch("v2", "GET /audio/{name}", 40, 5.0),
    Batch("v2", "GET /new", 5, 5.0),
]
