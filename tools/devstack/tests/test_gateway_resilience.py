"""Retries that never replay a request that was sent, and outlier ejection like Envoy's.

The gateway is the real proxy, in this event loop, configured from an Istio
directory (the repository's own ``k8s/istio`` where the test is about it).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable

import httpx
from testkit.devstack import Upstream, outlier_rule, split_rule, virtual_service
from testkit.process import REPO_ROOT, free_port

REPO_ISTIO = REPO_ROOT / "k8s" / "istio"
StartGateway = Callable[..., Awaitable[str]]
Upstreams = Callable[[str], Awaitable[Upstream]]


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
    gateway: StartGateway,
) -> None:
    """The repository's books route (edge and the FQDN host) with an upstream that
    takes the whole POST and then resets: the gateway answers 503, books saw it once."""
    books = ResetAfterBody()
    await books.start()
    dead = f"http://127.0.0.1:{free_port()}"
    try:
        url = await gateway(
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
    gateway: StartGateway, upstreams
) -> None:
    """A connect failure sent nothing: `reset-before-request` alone retries it elsewhere."""
    alive = await upstreams("alive")
    dead = f"http://127.0.0.1:{free_port()}"
    retrying = split_rule(50, 50, "retries: {attempts: 2, retryOn: reset-before-request}")
    url = await gateway(virtual_service(retrying), {"svc/v1": alive.url, "svc/v2": dead})
    async with httpx.AsyncClient(timeout=30.0) as client:
        answers = [await client.post(f"{url}/books", content=b"x") for _ in range(30)]
    assert {r.status_code for r in answers} == {200}
    assert alive.calls["/books"] == 30


# One route to v1 that is never retried: every answer is counted by the outlier detection.
ONE_TRY = virtual_service(
    "  - retries: {attempts: 0}\n    route: [{destination: {host: svc, subset: v1}}]\n"
)


async def _gets_to_an_app_that_fails(
    gateway: StartGateway, upstreams: Upstreams, policy: str, n: int
) -> tuple[list[str], Upstream]:
    """``n`` GET /fail through the gateway with outlier detection ``policy`` to an app that
    answers 503 every time: the answers' bodies, and the app."""
    one = await upstreams("one")
    one.fail_first = 1000
    url = await gateway(ONE_TRY, {"svc/v1": one.url}, extra=outlier_rule(policy))
    async with httpx.AsyncClient(timeout=30.0) as client:
        answers = [await client.get(f"{url}/fail") for _ in range(n)]
    return [r.text for r in answers], one


async def test_the_only_destination_ejected_is_envoys_no_healthy_upstream(
    gateway: StartGateway, upstreams: Upstreams
) -> None:
    """Counting answers ejects an app that answers 503: Istio's panic threshold is
    minHealthPercent (0), so the caller then gets Envoy's 503 without Retry-After."""
    policy = "consecutive5xxErrors: 3\nbaseEjectionTime: 30s\nmaxEjectionPercent: 100\n"
    answers, one = await _gets_to_an_app_that_fails(gateway, upstreams, policy, 6)
    assert answers[:3] == ["failing"] * 3
    assert answers[3:] == ["no healthy upstream"] * 3
    assert one.calls["/fail"] == 3


async def test_with_min_health_percent_an_ejected_destination_still_gets_traffic(
    gateway: StartGateway, upstreams: Upstreams
) -> None:
    policy = "consecutive5xxErrors: 3\nmaxEjectionPercent: 100\nminHealthPercent: 50\n"
    answers, _ = await _gets_to_an_app_that_fails(gateway, upstreams, policy, 6)
    assert answers == ["failing"] * 6


async def test_split_local_origin_ejects_on_connection_failures_only(
    gateway: StartGateway, upstreams: Upstreams
) -> None:
    policy = (
        "splitExternalLocalOriginErrors: true\nconsecutiveLocalOriginFailures: 3\n"
        "consecutive5xxErrors: 0\nmaxEjectionPercent: 100\n"
    )
    answers, _ = await _gets_to_an_app_that_fails(gateway, upstreams, policy, 20)
    dead = f"http://127.0.0.1:{free_port()}"
    dead_url = await gateway(ONE_TRY, {"svc/v1": dead}, extra=outlier_rule(policy))
    async with httpx.AsyncClient(timeout=30.0) as client:
        refused = [await client.get(f"{dead_url}/") for _ in range(5)]
    assert set(answers) == {"failing"}  # the app's own 503s, every time
    assert ["connection failure" in r.text for r in refused[:3]] == [True] * 3
    assert [r.text for r in refused[3:]] == ["no healthy upstream"] * 2
