"""One analysis, for `client compare` and each step of `client canary`.

Source -> entry spans of the query window -> one span per (trace, resource),
the last attempt -> the window where both versions served (after each one's
warm-up) -> the per-resource verdict. The same steps whatever the source (the
local test agent, the cluster's through a port forward, Datadog's API).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from polling_client.cli import CompareCommand
from polling_client.datadog import DatadogQuery, fetch_datadog_traces
from polling_client.datadog import describe as describe_datadog
from polling_client.errors import ClientError
from polling_client.traces import (
    describe_retention,
    fetch_retention,
    fetch_traces,
    last_attempts,
    select_entry_spans,
)
from polling_client.window import Window, both_served, iso

if TYPE_CHECKING:
    from polling_client.verdict import Comparison


@dataclass(frozen=True)
class Analysis:
    source: str
    comparison: Comparison
    compared: Window | None  # where both versions served; None: nowhere
    query: Window
    warmup_s: float
    notes: list[str]

    def window_text(self) -> str:
        both = " and ".join((self.comparison.baseline, self.comparison.canary))
        if self.compared is None:
            where = f"no period where {both} both served"
        else:
            where = f"{self.compared.describe()}, where {both} both served"
        if self.warmup_s:
            where += f" (first {self.warmup_s:g}s of each skipped)"
        return f"{where}; asked the source for {self.query.describe()}"

    def window_document(self) -> dict[str, Any]:
        return {
            "start": iso(self.compared.start_ns) if self.compared else None,
            "end": iso(self.compared.end_ns) if self.compared else None,
            "seconds": round(self.compared.seconds, 3) if self.compared else 0.0,
            "warmup_s": self.warmup_s,
            "query_start": iso(self.query.start_ns),
            "query_end": iso(self.query.end_ns),
        }


def read_source(command: CompareCommand, query: Window) -> tuple[str, list[list[dict[str, Any]]]]:
    """Where the spans come from: its description and the traces (one shape for all)."""
    if command.source == "datadog":
        datadog = DatadogQuery(
            service=command.service,
            env=command.env,
            versions=(command.baseline, command.canary),
            start_ns=query.start_ns,
            end_ns=query.end_ns,
            api_url=command.datadog_url,
            timeout_s=command.timeout_s,
        )
        return describe_datadog(datadog), fetch_datadog_traces(datadog)
    traces = fetch_traces(command.agent_url, command.timeout_s)
    retention = fetch_retention(command.agent_url, command.timeout_s)
    if retention is None:
        return command.agent_url, traces
    kept = describe_retention(retention)
    return (
        f"{command.agent_url} (keeps the last {kept} of traces: stack up --trace-retention)",
        traces,
    )


def analyse(command: CompareCommand, query: Window) -> Analysis:
    """Read the source for the query window and judge (ClientError: nothing to judge)."""
    source, traces = read_source(command, query)
    selection = select_entry_spans(traces, service=command.service, env=command.env)
    spans = [
        s
        for s in selection.spans
        if query.holds(s) and (not command.resources or s.resource in command.resources)
    ]
    if not spans:
        where = f" with env {command.env}" if command.env else ""
        if command.resources:
            where += " of resource " + " or ".join(repr(r) for r in command.resources)
        raise ClientError(
            f"{source} holds no versioned {command.service} entry spans{where}"
            f" from {query.describe()} ({len(traces)} traces in total): send traffic first,"
            " e.g. `uv run client poll --count 200`"
        )
    # scipy takes a second to import: only needed from here on.
    from polling_client.verdict import compare, group_spans

    spans, retried = last_attempts(spans)
    versions = (command.baseline, command.canary)
    compared = both_served(spans, versions, command.warmup_s)
    outside = len(spans)
    if compared is not None or all(v in {s.version for s in spans} for v in versions):
        # (a version with no span at all keeps the rest: "no requests of v2")
        spans = [s for s in spans if compared is not None and compared.holds(s)]
    outside -= len(spans)
    notes = []
    retention = (
        None
        if command.source == "datadog"
        else fetch_retention(command.agent_url, command.timeout_s)
    )
    if retention is not None:
        notes.append(
            f"the test agent keeps the last {describe_retention(retention)} of traces"
            " (stack up --trace-retention): older requests are not in this analysis"
        )
    others = sorted({s.version for s in selection.spans} - set(versions))
    if others:
        notes.append(f"versions not compared: {', '.join(others)}")
    if selection.unversioned:
        notes.append(f"{selection.unversioned} entry spans without a version tag left out")
    if selection.probes:
        notes.append(
            f"{selection.probes} probe spans left out (GET /healthz, GET /readyz, GET /livez"
            " or User-Agent kube-probe/...): not user traffic, and as many for each version"
        )
    if selection.outgoing:
        notes.append(
            f"{selection.outgoing} root spans of calls {command.service} made (span.kind client,"
            " e.g. a readiness check's gRPC call) left out: not requests to it"
        )
    if selection.sampled:
        mixed = " (retention is mixed)" if selection.filtered else ""
        notes.append(
            f"{selection.sampled} spans kept by Datadog's diversity or flat sampling left out"
            f"{mixed}: they are a sample, not every request"
        )
    if retried:
        notes.append(f"{retried} earlier attempts of retried requests counted once, by the last")
    if outside:
        notes.append(f"{outside} entry spans outside the window where both versions served")
    comparison = compare(group_spans(spans, *versions), *versions, command.thresholds)
    return Analysis(source, comparison, compared, query, command.warmup_s, notes)
