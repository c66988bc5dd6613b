"""Retries that never replay a request that was sent, and outlier ejection like Envoy's.

The gateway is the real proxy, in this event loop, configured from an Istio
directory (the repository's own ``k8s/istio`` where the test is about it).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from devstack.gateway.istio import load_gateway_config
from devstack.gateway.outlier import OutlierDetector
from devstack.gateway.proxy import Proxy
from devstack.gateway.server import resolve_upstreams
from testkit.devstack import write_istio_dir
from testkit.process import REPO_ROOT, free_port

REPO_ISTIO = REPO_ROOT / "k8s" / "istio"
StartGateway = Callable[[Path, dict[str, str]], Awaitable[str]]


@pytest.fixture
async def gateway_from() -> AsyncIterator[StartGateway]:
    """Start the proxy from an Istio directory and local addresses; returns its URL."""
    started: list[tuple[web.ServerRunner, Proxy]] = []

    async def start(directory: Path, upstream_urls: dict[str, str]) -> str:
        config = load_gateway_config(directory)
        proxy = Proxy(
            config.table, resolve_upstreams(config, upstream_urls), OutlierDetector(config.outlier)
        )
        await proxy.start()
        runner = web.ServerRunner(web.Server(proxy.handle), handle_signals=False)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        started.append((runner, proxy))
        return f"http://127.0.0.1:{port}"

    yield start
    for runner, proxy in started:
        await runner.cleanup()
        await proxy.close()


class ResetAfterBody:
    """An HTTP upstream that reads a whole request, counts it, then resets the connection."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.port = free_port()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await reader.readexactly(length)
        self.requests.append(head + body)
        # SO_LINGER 0: close() sends a RST, as a crashing or killed app does.
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()


async def test_a_post_that_reached_books_is_never_sent_twice(
    gateway_from: StartGateway,
) -> None:
    """The repository's books route (edge and the FQDN host) with an upstream that
    takes the whole POST and then resets: the gateway answers 503, books saw it once."""
    books = ResetAfterBody()
    await books.start()
    dead = f"http://127.0.0.1:{free_port()}"
    try:
        url = await gateway_from(
            REPO_ISTIO,
            {"books": books.url, "text-to-speech/v1": dead, "text-to-speech/v2": dead},
        )
        async with httpx.AsyncClient(timeout=30.0) as client:
            for host in (None, "books.apps.svc.cluster.local"):
                before = len(books.requests)
                headers = {"Host": host} if host else {}
                reply = await client.post(
                    f"{url}/books", json={"title": "Dune", "author": "Herbert"}, headers=headers
                )
                assert reply.status_code == 503, reply.text
                assert "reset" in reply.text
                assert len(books.requests) == before + 1, (host, books.requests)
    finally:
        await books.stop()
    assert all(b'"title":"Dune"' in request for request in books.requests)


async def test_reset_before_request_still_retries_what_was_never_sent(
    tmp_path: Path, gateway_from: StartGateway, upstreams
) -> None:
    """A connect failure sent nothing: `reset-before-request` alone retries it elsewhere."""
    alive = await upstreams("alive")
    dead = f"http://127.0.0.1:{free_port()}"
    directory = write_istio_dir(
        tmp_path / "istio",
        textwrap.dedent(
            """\
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: svc, namespace: apps}
            spec:
              hosts: ['*']
              gateways: [apps/gw]
              http:
              - retries: {attempts: 2, retryOn: reset-before-request}
                route:
                - {destination: {host: svc, subset: v1}, weight: 50}
                - {destination: {host: svc, subset: v2}, weight: 50}
            """
        ),
    )
    url = await gateway_from(directory, {"svc/v1": alive.url, "svc/v2": dead})
    async with httpx.AsyncClient(timeout=30.0) as client:
        answers = [await client.post(f"{url}/books", content=b"x") for _ in range(30)]
    assert {r.status_code for r in answers} == {200}
    assert alive.calls["/books"] == 30


def _outlier_dir(tmp_path: Path, outlier: str) -> Path:
    rule = textwrap.dedent(
        """\
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: svc-outlier, namespace: apps}
        spec:
          host: svc
          trafficPolicy:
            outlierDetection:
        """
    ) + textwrap.indent(textwrap.dedent(outlier), "      ")
    virtual_service = textwrap.dedent(
        """\
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: svc, namespace: apps}
        spec:
          hosts: ['*']
          gateways: [apps/gw]
          http:
          - retries: {attempts: 0}
            route: [{destination: {host: svc, subset: v1}}]
        """
    )
    return write_istio_dir(tmp_path / "istio", virtual_service, extra=rule)


async def test_the_only_destination_ejected_is_envoys_no_healthy_upstream(
    tmp_path: Path, gateway_from: StartGateway, upstreams
) -> None:
    """Counting answers ejects an app that answers 503: Istio's panic threshold is
    minHealthPercent (0), so the caller then gets Envoy's 503 without Retry-After."""
    one = await upstreams("one")
    one.fail_first = 1000
    directory = _outlier_dir(
        tmp_path, "consecutive5xxErrors: 3\nbaseEjectionTime: 30s\nmaxEjectionPercent: 100\n"
    )
    url = await gateway_from(directory, {"svc/v1": one.url})
    async with httpx.AsyncClient(timeout=30.0) as client:
        answers = [await client.get(f"{url}/fail") for _ in range(6)]
    assert [r.text for r in answers[:3]] == ["failing"] * 3
    assert [r.text for r in answers[3:]] == ["no healthy upstream"] * 3
    assert one.calls["/fail"] == 3


async def test_with_min_health_percent_an_ejected_destination_still_gets_traffic(
    tmp_path: Path, gateway_from: StartGateway, upstreams
) -> None:
    one = await upstreams("one")
    one.fail_first = 1000
    directory = _outlier_dir(
        tmp_path, "consecutive5xxErrors: 3\nmaxEjectionPercent: 100\nminHealthPercent: 50\n"
    )
    url = await gateway_from(directory, {"svc/v1": one.url})
    async with httpx.AsyncClient(timeout=30.0) as client:
        answers = [await client.get(f"{url}/fail") for _ in range(6)]
    assert [r.text for r in answers] == ["failing"] * 6


async def test_split_local_origin_ejects_on_connection_failures_only(
    tmp_path: Path, gateway_from: StartGateway, upstreams
) -> None:
    one = await upstreams("one")
    one.fail_first = 1000
    policy = (
        "splitExternalLocalOriginErrors: true\nconsecutiveLocalOriginFailures: 3\n"
        "consecutive5xxErrors: 0\nmaxEjectionPercent: 100\n"
    )
    url = await gateway_from(_outlier_dir(tmp_path / "a", policy), {"svc/v1": one.url})
    dead = f"http://127.0.0.1:{free_port()}"
    dead_url = await gateway_from(_outlier_dir(tmp_path / "b", policy), {"svc/v1": dead})
    async with httpx.AsyncClient(timeout=30.0) as client:
        answers = [await client.get(f"{url}/fail") for _ in range(20)]
        refused = [await client.get(f"{dead_url}/") for _ in range(5)]
    assert {r.text for r in answers} == {"failing"}  # the app's own 503s, every time
    assert ["connection failure" in r.text for r in refused[:3]] == [True] * 3
    assert [r.text for r in refused[3:]] == ["no healthy upstream"] * 2
