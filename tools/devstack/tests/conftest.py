"""Fixtures for the devstack tests: small real HTTP upstreams, an in-process gateway, and
`stack up` on a copy of the workspace (``stack``: one per test module that asks for it)."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from testkit.devstack import (
    InProcessGateway,
    RunningStack,
    Upstream,
    serving_gateway,
    stack_on_a_copy,
    write_istio_dir,
)


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    """``stack up`` on a copy of the workspace, shared by the tests of one module; the
    module's ``DEADLINE_S`` bounds each wait (the copy is edited, never the checkout)."""
    module = request.module
    with stack_on_a_copy(
        tmp_path_factory.mktemp(module.__name__.rsplit(".", 1)[-1]), module.DEADLINE_S
    ) as running:
        yield running


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


GatewaysFactory = Callable[..., Awaitable[InProcessGateway]]
GatewayFactory = Callable[..., Awaitable[str]]


@pytest.fixture
async def gateways(tmp_path: Path) -> AsyncIterator[GatewaysFactory]:
    """Start the real proxy in this event loop, served until the test ends.

    ``start(routes, upstream_urls, *, extra="", **options)``: ``routes`` is an Istio
    directory, or the text of a VirtualService (written beside the test Gateway and
    DestinationRule, plus the ``extra`` documents); ``options`` go to
    :func:`testkit.devstack.serving_gateway`.
    """
    numbers = itertools.count()
    async with contextlib.AsyncExitStack() as started:

        async def start(
            routes: str | Path, upstream_urls: dict[str, str], *, extra: str = "", **options: Any
        ) -> InProcessGateway:
            if isinstance(routes, str):
                routes = write_istio_dir(tmp_path / f"istio{next(numbers)}", routes, extra)
            gateway = serving_gateway(routes, upstream_urls, **options)
            return await started.enter_async_context(gateway)

        yield start


@pytest.fixture
async def gateway(gateways: GatewaysFactory) -> GatewayFactory:
    """As ``gateways``, returning only the gateway's URL."""

    async def start(routes: str | Path, upstream_urls: dict[str, str], **options: Any) -> str:
        return (await gateways(routes, upstream_urls, **options)).url

    return start
