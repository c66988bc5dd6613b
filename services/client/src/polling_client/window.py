"""The time window a comparison covers: the same absolute times for both versions.

Two windows, both absolute (ns since the epoch), computed once:

- the *query* window, ``[now - since, now]``, fixed before the first request
  to a source and used for every request of every source (the test agent's
  spans are filtered by it, Datadog's two queries ask for it by its
  timestamps), so two queries cannot see two different periods;
- the *compared* window, inside it: from the later of the two versions' first
  span (plus ``warmup``: each version's first seconds skipped, cold caches and
  connection set-up) to the earlier of their last spans. Outside it only one
  version served, and comparing then compares periods, not versions (a load
  peak, a backend restart), the same trap as a pooled mix.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from polling_client.traces import EntrySpan

NS = 1_000_000_000


@dataclass(frozen=True)
class Window:
    start_ns: int
    end_ns: int

    @property
    def seconds(self) -> float:
        return max(0, self.end_ns - self.start_ns) / NS

    def holds(self, span: EntrySpan) -> bool:
        return self.start_ns <= span.start_ns <= self.end_ns

    def describe(self) -> str:
        return f"{iso(self.start_ns)} to {iso(self.end_ns)} ({self.seconds:.1f}s)"


def iso(ns: int) -> str:
    """ns since the epoch -> ``2026-12-07T16:30:00.123Z`` (UTC, milliseconds)."""
    moment = datetime.fromtimestamp(ns / NS, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def query_window(since_s: float, now_ns: int | None = None) -> Window:
    end = time.time_ns() if now_ns is None else now_ns
    return Window(end - round(since_s * NS), end)


def both_served(
    spans: Iterable[EntrySpan], versions: Sequence[str], warmup_s: float = 0.0
) -> Window | None:
    """Where every one of ``versions`` served, each one's first ``warmup_s`` skipped.

    None when a version has no span, or the warm-up leaves nothing.
    """
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for span in spans:
        if span.version in versions:
            first[span.version] = min(first.get(span.version, span.start_ns), span.start_ns)
            last[span.version] = max(last.get(span.version, span.start_ns), span.start_ns)
    if any(version not in first for version in versions):
        return None
    start = max(first[v] + round(warmup_s * NS) for v in versions)
    end = min(last[v] for v in versions)
    return Window(start, end) if start <= end else None
