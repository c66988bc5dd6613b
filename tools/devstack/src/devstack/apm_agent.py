"""The stack's Datadog APM test agent, with a retention window (``python -m devstack.apm_agent``).

``ddapm-test-agent`` keeps every request it receives for as long as it runs
(about 3.4 KB of memory per traced request: some 250 MB an hour at
``client poll``'s default rate). The stack runs the same agent with one
addition: a request older than ``--retention`` (default 10 minutes) is dropped,
checked every few seconds, so a day-long ``stack up`` stays bounded and the
memory of dropped requests is reused by new ones. Everything else is the
agent's own: its arguments, routes and behaviour.

``GET /test/retention`` answers ``{"retention_s": ..., "oldest_s": ...}`` so
that ``client compare`` can say which window its traces come from.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from servicekit.durations import parse_duration

ARRIVED = "_stack_arrived"
DEFAULT_RETENTION = "10m"
TRIM_EVERY_S = 5.0


def trim(requests: list[Any], cutoff: float) -> int:
    """Drop the requests that arrived before ``cutoff`` (in place); how many were dropped.

    The list is in arrival order. A request with no arrival stamp (one the
    agent made up itself) goes with the stamped requests around it.
    """
    keep_from = 0
    for index, request in enumerate(requests):
        try:
            arrived = request.get(ARRIVED) if hasattr(request, "get") else None
        except Exception:
            arrived = None
        if arrived is None:
            continue
        if arrived >= cutoff:
            break
        keep_from = index + 1
    if keep_from:
        del requests[:keep_from]
    return keep_from


@web.middleware
async def stamp_arrival(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    request[ARRIVED] = time.monotonic()
    return await handler(request)


def with_retention(
    make_app: Callable[..., web.Application], retention_s: float
) -> Callable[..., web.Application]:
    """The agent's app factory, plus arrival stamps, the trimmer and ``/test/retention``."""

    def factory(*args: Any, **kwargs: Any) -> web.Application:
        app = make_app(*args, **kwargs)
        app.middlewares.insert(0, stamp_arrival)
        agent = app["agent"]

        async def retention(_: web.Request) -> web.Response:
            requests = agent._requests
            stamps = [r.get(ARRIVED) for r in requests if hasattr(r, "get")]
            oldest = min((s for s in stamps if s is not None), default=None)
            return web.json_response(
                {
                    "retention_s": retention_s,
                    "requests": len(requests),
                    "oldest_s": None if oldest is None else round(time.monotonic() - oldest, 1),
                }
            )

        async def trimmer(_: web.Application) -> AsyncIterator[None]:
            async def run() -> None:
                while True:
                    await asyncio.sleep(TRIM_EVERY_S)
                    trim(agent._requests, time.monotonic() - retention_s)

            task = asyncio.create_task(run())
            yield
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        app.router.add_get("/test/retention", retention)
        app.cleanup_ctx.append(trimmer)
        return app

    return factory


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.apm_agent",
        description="ddapm-test-agent with a retention window; other arguments are the agent's.",
        add_help=False,
    )
    parser.add_argument("--retention", default=DEFAULT_RETENTION)
    ours, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    try:
        retention_s = parse_duration(ours.retention)
    except ValueError as error:
        raise SystemExit(f"apm-test-agent: --retention {ours.retention!r}: {error}") from None
    if retention_s <= 0:
        raise SystemExit(f"apm-test-agent: --retention {ours.retention!r}: must be above 0")
    from ddapm_test_agent import agent

    agent.main(rest, app_factory=with_retention(agent.make_app, retention_s))


if __name__ == "__main__":
    main()
