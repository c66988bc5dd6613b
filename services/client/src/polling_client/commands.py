"""The commands, end to end: options in, text out, exit status back."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from functools import partial

from polling_client.analysis import analyse
from polling_client.cli import CanaryCommand, CompareCommand, PollCommand
from polling_client.errors import ClientError, ConfigError
from polling_client.live import LiveDisplay
from polling_client.poll import run_poll
from polling_client.report import compare_json, compare_table, poll_json, poll_table
from polling_client.window import query_window


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
    analysis = analyse(command, query_window(command.since_s))
    comparison = analysis.comparison
    if command.output_format == "json":
        render = partial(compare_json, window=analysis.window_document())
    else:
        render = partial(compare_table, window=analysis.window_text())
    print(
        render(comparison, source=analysis.source, service=command.service, ignored=analysis.notes)
    )
    if command.plot is not None:
        # matplotlib takes seconds to import: only when a plot is asked for.
        from polling_client.plot import plot_latencies

        plot_latencies(comparison, command.plot, command.plot_panels)
        print(f"plot written to {command.plot}", file=sys.stderr)
    return 0


def canary(command: CanaryCommand) -> int:
    """The rollout (polling_client.canary): 0 promoted, 1 rolled back or stopped, 130 Ctrl-C."""
    require_compare_extra()
    from polling_client.canary import run_canary

    return run_canary(command)
