"""Fixtures for the devstack tests: small real HTTP upstreams and an in-process gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from devstack.gateway.istio import load_gateway_config
from devstack.gateway.outlier import OutlierDetector
from devstack.gateway.proxy import Proxy, make_server
from devstack.gateway.server import resolve_upstreams
from testkit.devstack import Upstream, write_istio_dir
from testkit.process import free_port


@pytest.fixture
async def upstreams() -> AsyncIterator[Callable[[str], Awaitable[Upstream]]]:
    started: list[Upstream] = []

    async def start(name: str) -> Upstream:
        upstream = Upstream(name)
        await upstream.start()
        started.append(upstream)
        return upstream

    yield start
    for upstream in started:
        await upstream.stop()


GatewayFactory = Callable[..., Awaitable[str]]


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    """Start the real proxy in this event loop from VirtualService YAML; returns its URL."""
    runners: list[tuple[web.ServerRunner, Proxy]] = []

    async def start(
        virtual_service: str, upstream_urls: dict[str, str], **proxy_options: Any
    ) -> str:
        directory = write_istio_dir(tmp_path / f"istio{len(runners)}", virtual_service)
        config = load_gateway_config(directory)
        proxy = Proxy(
            config.table,
            resolve_upstreams(config, upstream_urls),
            OutlierDetector(config.outlier),
            **proxy_options,
        )
        await proxy.start()
        runner = web.ServerRunner(make_server(proxy.handle), handle_signals=False)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append((runner, proxy))
        return f"http://127.0.0.1:{port}"

    yield start
    for runner, proxy in runners:
        await runner.cleanup()
        await proxy.close()
