"""Build the proxy from settings and serve it until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web
from servicekit.telemetry import instrument_aiohttp_handler

from devstack.gateway.admin import start_admin
from devstack.gateway.istio import GatewayConfig
from devstack.gateway.outlier import OutlierDetector
from devstack.gateway.proxy import Proxy, make_server
from devstack.gateway.routing import Destination
from devstack.gateway.settings import GatewaySettings

log = logging.getLogger("devstack.gateway")


class MissingUpstreamError(Exception):
    """A destination of the routes has no local address."""


def resolve_upstreams(config: GatewayConfig, upstreams: dict[str, str]) -> dict[Destination, str]:
    resolved: dict[Destination, str] = {}
    missing: list[str] = []
    for destination in sorted(config.table.destinations(), key=lambda d: d.key):
        url = upstreams.get(destination.key)
        if url is None:
            missing.append(destination.key)
        else:
            resolved[destination] = url
    if missing:
        raise MissingUpstreamError(
            "no local address for destination " + ", ".join(missing) + " (set GATEWAY_UPSTREAMS)"
        )
    return resolved


def build_proxy(config: GatewayConfig, settings: GatewaySettings) -> Proxy:
    return Proxy(
        config.table,
        resolve_upstreams(config, settings.upstreams),
        OutlierDetector(config.outlier),
        max_body_bytes=settings.max_body_bytes,
        access_log=settings.log_requests,
        limits=settings.limits,
    )


async def serve(
    proxy: Proxy,
    settings: GatewaySettings,
    watch: Callable[[asyncio.Event], Coroutine[Any, Any, None]] | None = None,
) -> None:
    """Listen until SIGTERM or SIGINT, then drain and close; ``watch(stop)`` runs meanwhile."""
    handler = instrument_aiohttp_handler(proxy.handle)  # server spans when tracing is on
    await proxy.start()
    # No aiohttp access log: formatting a line per request costs a third of the
    # proxy's CPU. GATEWAY_ACCESS_LOG=true logs requests from the handler instead.
    runner = web.ServerRunner(
        make_server(handler, settings.limits, access_log=None), handle_signals=False
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, backlog=1024, reuse_address=True)
    admin: web.AppRunner | None = None
    try:
        if settings.admin_socket is not None:
            # Before the public port: once that answers, the stack can tell readiness.
            admin = await start_admin(proxy, settings.admin_socket)
        await site.start()
    except OSError as error:
        if admin is not None:
            await admin.cleanup()
        await runner.cleanup()
        await proxy.close()
        where = (
            f"{settings.host}:{settings.port}"
            if admin is not None or settings.admin_socket is None
            else str(settings.admin_socket)
        )
        raise SystemExit(f"local-gateway: cannot listen on {where}: {error.strerror}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info(
        "listening",
        extra={"url": f"http://{settings.host}:{settings.port}"},
    )
    watching = asyncio.create_task(watch(stop)) if watch is not None else None
    await stop.wait()
    log.info("stopping")
    if watching is not None:
        await watching  # it ends within its step once `stop` is set
    await runner.cleanup()
    if admin is not None:
        await admin.cleanup()
    await proxy.close()
