"""``client``: ``client poll ...``, ``client compare ...`` and ``client canary ...``.

Exit status: 0 success, 1 failure (error rate above the threshold, an
unreachable URL, no traces), 2 bad flag or setting (including Datadog API keys
missing or refused). A failure is one line on
stderr, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.metadata import version

from servicekit.telemetry import configure_telemetry

from polling_client.cli import PROGRAM, CanaryCommand, PollCommand, parse_command
from polling_client.commands import canary, compare_versions, poll
from polling_client.errors import ClientError, ConfigError


def main(argv: Sequence[str] | None = None) -> int:
    command = parse_command(argv)
    try:
        if isinstance(command, PollCommand):
            # Each polled request starts the trace the gateway and fronts continue.
            configure_telemetry(PROGRAM, version=version("polling-client"))
            return poll(command)
        if isinstance(command, CanaryCommand):
            if command.rate > 0:  # its load starts traces, as `client poll` does
                configure_telemetry(PROGRAM, version=version("polling-client"))
            return canary(command)
        return compare_versions(command)
    except ConfigError as error:
        print(f"{PROGRAM}: {error}", file=sys.stderr)
        return 2
    except ClientError as error:
        print(f"{PROGRAM}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
