"""Run an ASGI app on granian, in this process, with a graceful SIGTERM.

Every HTTP service's ``main()`` ends with :func:`serve`. Granian runs
*embedded*: its Rust HTTP stack serves on the current asyncio loop, in the
calling process, so there is no supervisor/worker fork. That keeps one process
per service (one RSS figure, one PID for signals and ``kill -9``) and lets
tracing set up in ``main()`` apply to the code that serves requests.

Chosen over uvicorn by measurement (more requests a second and a lower p99 on
one core): docs/decisions/0002-granian-embedded.md.

SIGTERM/SIGINT stop accepting connections, let in-flight requests finish, then
run the app's lifespan shutdown (closing databases, clients) and return.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
from typing import Any

from granian.constants import HTTPModes, Interfaces
from granian.errors import FatalError
from granian.server.embed import Server
from litestar.types import ASGIApp

from servicekit.http.access_log import AccessLogMiddleware
from servicekit.http.protocol import HeadAsGetMiddleware

log = logging.getLogger("servicekit.http")

# Granian configures its own loggers with plain-text handlers; send them through
# the root (JSON) handler instead.
_GRANIAN_LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {
        "_granian": {"propagate": True, "handlers": []},
        "granian.access": {"level": "ERROR", "propagate": True, "handlers": []},
    },
}


def serve(
    app: ASGIApp, host: str, port: int, *, access_log: bool = True, uvloop: bool = False
) -> None:
    """Serve ``app`` on ``host:port`` until SIGTERM/SIGINT.

    Blocks; returns after a graceful shutdown so ``main()`` exits with status 0.
    ``uvloop``: run on uvloop's event loop instead of asyncio's (the caller
    depends on ``uvloop``). Books does: its per-request work is mostly event
    loop hand-offs, and uvloop answered GET by id 7-8 % faster, pinned to one
    core. The fronts stay on asyncio, where grpc.aio is documented to run.
    """
    loop_factory = None
    if uvloop:
        import uvloop as uvloop_module

        loop_factory = uvloop_module.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_serve(app, host, port, access_log=access_log))


async def _serve(app: ASGIApp, host: str, port: int, *, access_log: bool) -> None:
    _ensure_port_free(host, port)
    target = app
    target = HeadAsGetMiddleware(target)  # outside Litestar's router, which has no HEAD routes
    if access_log:
        target = AccessLogMiddleware(target)
    server = Server(
        target,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        http=HTTPModes.http1,
        websockets=False,
        backlog=1024,
        log_dictconfig=_GRANIAN_LOGGING,
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _stop, server, signum)
    log.info("listening", extra={"network.host": host, "network.port": port})
    try:
        await server.serve()
    except FatalError as error:
        # Granian has logged the cause (e.g. the app's start-up hook failed).
        log.error(
            "start-up failed", extra={"error.kind": "FatalError", "error.message": str(error)}
        )
        raise SystemExit(1) from None
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    log.info("stopped")


def _stop(server: Server, signum: int) -> None:
    log.info("shutting down", extra={"signal": signal.Signals(signum).name})
    server.stop()  # type: ignore[no-untyped-call]


def _ensure_port_free(host: str, port: int) -> None:
    """Exit with one line if ``host:port`` is taken.

    Granian listens with SO_REUSEPORT, so a second instance on a busy port would
    silently share it with the first; a plain bind first makes that an error.
    """
    try:
        socket.create_server((host, port)).close()
    except OSError as error:
        log.error(
            "cannot listen",
            extra={"network.host": host, "network.port": port, "error.message": str(error)},
        )
        print(f"cannot listen on {host}:{port}: {error.strerror or error}", file=sys.stderr)
        raise SystemExit(1) from None
