"""One synthetic traffic shape, fed to every source of `client compare`.

A plan is a list of :class:`Batch` (version, resource, count, latency, errors).
Durations are deterministic, spread from L to 1.5 L; the first ``errors``
requests of a batch fail. ``emit_traces.py`` sends a plan as real ddtrace spans
to an APM test agent; ``fake_datadog.py`` serves the same plan as Datadog's
Search spans API would. The same plan must give the same verdict from both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Batch:
    version: str
    resource: str
    count: int
    latency_ms: float
    errors: int = 0


def duration_s(latency_ms: float, index: int) -> float:
    return latency_ms / 1000.0 * (1.0 + 0.5 * ((index * 37) % 100) / 100.0)


def requests(batch: Batch) -> Iterator[tuple[float, bool]]:
    """(duration in seconds, failed) of each request of the batch."""
    for i in range(batch.count):
        yield duration_s(batch.latency_ms, i), i < batch.errors


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
