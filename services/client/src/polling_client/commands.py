"""The two commands, end to end: options in, text out, exit status back."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from typing import Any

from polling_client.cli import CompareCommand, PollCommand
from polling_client.datadog import DatadogQuery, fetch_datadog_traces
from polling_client.datadog import describe as describe_datadog
from polling_client.errors import ClientError, ConfigError
from polling_client.live import LiveDisplay
from polling_client.poll import run_poll
from polling_client.report import compare_json, compare_table, poll_json, poll_table
from polling_client.traces import fetch_traces, select_entry_spans


def poll(command: PollCommand) -> int:
    """Poll, print the table; 1 when the error rate is above the threshold."""
    display = LiveDisplay(sys.stderr)
    try:
        summary = asyncio.run(
            run_poll(
                command.options,
                progress=display.update,
                progress_interval_s=display.interval_s,
                notify=lambda message: print(message, file=sys.stderr, flush=True),
            )
        )
    finally:
        display.finish()
    render = poll_json if command.output_format == "json" else poll_table
    print(render(summary, command.max_error_rate))
    if summary.requests == 0:
        raise ClientError("no request was sent")
    return 0 if summary.error_rate <= command.max_error_rate else 1


def _read_source(command: CompareCommand) -> tuple[str, list[list[dict[str, Any]]]]:
    """Where the spans come from: its description and the traces (one shape for all)."""
    if command.source == "datadog":
        query = DatadogQuery(
            service=command.service,
            env=command.env,
            since_s=command.since_s,
            api_url=command.datadog_url,
            timeout_s=command.timeout_s,
        )
        return describe_datadog(query), fetch_datadog_traces(query)
    return command.agent_url, fetch_traces(command.agent_url, command.timeout_s)


# The modules of the polling-client[compare] extra (scipy, matplotlib,
# datadog-api-client): `client compare` runs on a developer's machine; the
# image, which only runs `client poll`, does not install them.
COMPARE_MODULES = ("scipy", "matplotlib", "datadog_api_client")


def require_compare_extra() -> None:
    """Refuse `client compare` up front (ConfigError: exit 2) when the extra is not installed."""
    missing = [name for name in COMPARE_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"compare needs the compare extra, not installed here (missing: {', '.join(missing)}):"
            " pip install 'polling-client[compare]', or run `uv run client compare` from the"
            " repository"
        )


def compare_versions(command: CompareCommand) -> int:
    """Print the per-resource comparison and verdict; 1 when there is nothing to compare."""
    require_compare_extra()
    source, traces = _read_source(command)
    selection = select_entry_spans(
        traces, service=command.service, env=command.env, include_probes=command.include_probes
    )
    spans = [s for s in selection.spans if not command.resources or s.resource in command.resources]
    if not spans:
        where = f" with env {command.env}" if command.env else ""
        if command.resources:
            where += " of resource " + " or ".join(repr(r) for r in command.resources)
        raise ClientError(
            f"{source} holds no versioned {command.service} entry spans{where}"
            f" ({len(traces)} traces in total): send traffic first, e.g."
            " `uv run client poll --count 200`"
        )
    # scipy and matplotlib take seconds to import: only needed from here on.
    from polling_client.plot import plot_latencies
    from polling_client.verdict import compare, group_spans

    others = sorted({s.version for s in spans} - {command.baseline, command.canary})
    notes = []
    if others:
        notes.append(f"versions not compared: {', '.join(others)}")
    if selection.unversioned:
        notes.append(f"{selection.unversioned} entry spans without a version tag left out")
    if selection.probes:
        notes.append(f"{selection.probes} health-probe spans left out")
    comparison = compare(
        group_spans(spans, command.baseline, command.canary),
        command.baseline,
        command.canary,
        command.thresholds,
    )
    render = compare_json if command.output_format == "json" else compare_table
    print(render(comparison, source=source, service=command.service, ignored=notes))
    if command.plot is not None:
        plot_latencies(comparison, command.plot, command.plot_panels)
        print(f"plot written to {command.plot}", file=sys.stderr)
    return 0
