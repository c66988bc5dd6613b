"""Counts answers per version while polling.

Each finished request is an :class:`Outcome`. Requests to the text-to-speech
routes are grouped by the ``x-tts-version`` header of the answer (``v1``,
``v2``); ``/books`` requests, answered by the books service, form the ``books``
row; a text-to-speech request that got no version header (connection refused,
timeout, a gateway error) lands in the ``no version`` row. The share of a
version is its part of all text-to-speech requests.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from polling_client.stats import Reservoir, percentiles
from polling_client.workload import TTS_OPERATIONS, Operation

BOOKS_ROW = "books"
NO_VERSION_ROW = "no version"


@dataclass(frozen=True)
class Outcome:
    operation: Operation
    latency_s: float
    version: str | None = None
    status: int | None = None
    error: str | None = None  # why it failed: "HTTP 503", "ConnectError", ...

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def row(self) -> str:
        if self.version:
            return self.version
        if self.operation in TTS_OPERATIONS:
            return NO_VERSION_ROW
        return BOOKS_ROW


@dataclass
class RowTally:
    requests: int = 0
    errors: int = 0
    latencies_ms: Reservoir = field(default_factory=Reservoir)


@dataclass(frozen=True)
class RowSummary:
    name: str
    requests: int
    errors: int
    share: float | None  # of text-to-speech requests; None for the books row
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class PollSummary:
    rows: list[RowSummary]
    requests: int
    errors: int
    error_reasons: dict[str, int]
    elapsed_s: float
    interrupted: bool = False  # stopped by SIGINT/SIGTERM, not by its count or duration

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def row(self, name: str) -> RowSummary | None:
        return next((row for row in self.rows if row.name == name), None)


class Tally:
    def __init__(self) -> None:
        self._rows: dict[str, RowTally] = {}
        self._reasons: Counter[str] = Counter()
        self.requests = 0
        self.errors = 0

    def record(self, outcome: Outcome) -> None:
        row = self._rows.setdefault(outcome.row, RowTally())
        row.requests += 1
        row.latencies_ms.add(outcome.latency_s * 1000.0)
        self.requests += 1
        if not outcome.ok:
            row.errors += 1
            self.errors += 1
            self._reasons[outcome.error or "error"] += 1

    def count(self, name: str) -> int:
        row = self._rows.get(name)
        return row.requests if row else 0

    def summary(self, elapsed_s: float) -> PollSummary:
        tts_total = sum(r.requests for name, r in self._rows.items() if name != BOOKS_ROW)
        rows = []
        for name in sorted(self._rows, key=_row_order):
            row = self._rows[name]
            share = None if name == BOOKS_ROW or not tts_total else row.requests / tts_total
            pct = percentiles(row.latencies_ms.values())
            rows.append(
                RowSummary(
                    name=name,
                    requests=row.requests,
                    errors=row.errors,
                    share=share,
                    p50_ms=pct[50.0],
                    p95_ms=pct[95.0],
                    p99_ms=pct[99.0],
                )
            )
        return PollSummary(
            rows=rows,
            requests=self.requests,
            errors=self.errors,
            error_reasons=dict(self._reasons.most_common()),
            elapsed_s=elapsed_s,
        )


def _row_order(name: str) -> tuple[int, str]:
    if name == BOOKS_ROW:
        return (2, name)
    if name == NO_VERSION_ROW:
        return (1, name)
    return (0, name)
