"""Readiness decides (the admin API), outlier lines, and Envoy's edge: limits and timeouts.

Each test runs the real proxy (and its admin API on a Unix socket) in this
event loop, in front of small real upstreams on loopback.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from devstack.gateway.http1 import EdgeLimits
from devstack.gateway.istio import IstioConfigError, load_gateway_config
from devstack.gatewaylink import GatewayLinkError
from testkit.devstack import (
    InProcessGateway,
    outlier_rule,
    split_rule,
    virtual_service,
    write_istio_dir,
)

DEADLINE_S = 30.0
PINNED_V1 = (
    "  - match: [{headers: {x-canary: {exact: v1}}}]\n"
    "    retries: {attempts: 0}\n"
    "    route: [{destination: {host: svc, subset: v1}}]\n"
)


def split(v1: int, v2: int) -> str:
    """x-canary: v1 pins v1; the rest is split v1:v2; no retries."""
    return virtual_service(PINNED_V1, split_rule(v1, v2, "retries: {attempts: 0}"))


# Istio's own defaults for what a restart would trip: 5 connection failures, 30 s out.
OUTLIER = outlier_rule(
    "consecutiveGatewayErrors: 5\nconsecutive5xxErrors: 0\n"
    "baseEjectionTime: 30s\nmaxEjectionPercent: 100\n"
)
PIN_V1 = {"x-canary": "v1"}


@pytest.fixture
async def short_dir() -> AsyncIterator[Path]:
    """A short directory: a Unix socket path must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="gw-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def running(
    gateways: Callable[..., Awaitable[InProcessGateway]], short_dir: Path
) -> Callable[..., Awaitable[InProcessGateway]]:
    """The gateway on ``split(*weights)`` and OUTLIER, with its admin API (``gw.link``)."""
    numbers = itertools.count()

    async def start(
        upstream_urls: dict[str, str],
        weights: tuple[int, int] = (70, 30),
        limits: EdgeLimits | None = None,
    ) -> InProcessGateway:
        socket = short_dir / f"admin{next(numbers)}.sock"
        return await gateways(
            split(*weights), upstream_urls, extra=OUTLIER, limits=limits, admin_socket=socket
        )

    return start


async def _served_by(client: httpx.AsyncClient, url: str, n: int, **kw: Any) -> list[str]:
    answers = [await client.get(f"{url}/", **kw) for _ in range(n)]
    return [r.headers.get("x-served-by", f"{r.status_code} {r.text}") for r in answers]


async def test_an_unready_destination_is_out_of_the_pick_and_back_the_moment_it_is_ready(
    running, upstreams
) -> None:
    v1, v2 = await upstreams("v1"), await upstreams("v2")
    gw = await running({"svc/v1": v1.url, "svc/v2": v2.url})
    async with httpx.AsyncClient(timeout=DEADLINE_S) as client:
        await gw.link.set_ready({"svc/v1": False}, "restarting")
        assert set(await _served_by(client, gw.url, 40)) == {"v2"}
        # The pinned route has no other destination: Envoy's answer with no endpoint.
        assert (
            await _served_by(client, gw.url, 3, headers=PIN_V1) == ["503 no healthy upstream"] * 3
        )
        assert v1.calls == {}  # never tried: nothing counted as a failure
        await gw.link.set_ready({"svc/v1": True}, "ready")
        assert await _served_by(client, gw.url, 3, headers=PIN_V1) == ["v1"] * 3


async def test_a_destination_ejected_before_a_restart_is_a_fresh_endpoint_once_ready(
    running, upstreams, caplog: pytest.LogCaptureFixture
) -> None:
    """The 31 s of the issue: connection failures while v1 was down ejected it for
    baseEjectionTime; ready again, it must be routable at once, and each step logged."""
    v1, v2 = await upstreams("v1"), await upstreams("v2")
    port = v1.port
    gw = await running({"svc/v1": v1.url, "svc/v2": v2.url})
    caplog.set_level(logging.INFO, logger="devstack.gateway")
    async with httpx.AsyncClient(timeout=DEADLINE_S) as client:
        await v1.stop()  # a restart the gateway was not told about (a crash)
        refused = await _served_by(client, gw.url, 6, headers=PIN_V1)
        assert refused[-1] == "503 no healthy upstream", refused
        ejected = [r for r in caplog.records if "destination ejected" in r.getMessage()]
        assert len(ejected) == 1 and ejected[0].destination == "svc/v1"  # type: ignore[attr-defined]
        assert "5 consecutive gateway connection failures" in ejected[0].reason  # type: ignore[attr-defined]
        # The stack restarts it on the same port and says so: out, then in, at once.
        await gw.link.set_ready({"svc/v1": False}, "restarting")
        await v1.start(port)
        await gw.link.set_ready({"svc/v1": True}, "ready after a restart")
        assert await _served_by(client, gw.url, 3, headers=PIN_V1) == ["v1"] * 3
    state = (await gw.link.state())["endpoints"]["svc/v1"]
    assert state["ready"] is True and state["ejected_for_s"] == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("endpoint not ready" in m for m in messages)
    assert any("endpoint ready: back in the pick" in m for m in messages)


async def test_an_ejection_ends_with_a_line_when_its_time_is_up(
    running, upstreams, caplog: pytest.LogCaptureFixture
) -> None:
    v1, v2 = await upstreams("v1"), await upstreams("v2")
    gw = await running({"svc/v1": v1.url, "svc/v2": v2.url})
    caplog.set_level(logging.INFO, logger="devstack.gateway")
    [v1_destination] = [d for d in gw.proxy.upstreams if d.key == "svc/v1"]
    for _ in range(5):
        gw.proxy.outlier.record_failure(v1_destination)
    assert v1_destination in gw.proxy.outlier.ejected()
    clock = gw.proxy.outlier.clock
    gw.proxy.outlier.clock = lambda: clock() + 31.0
    assert v1_destination not in gw.proxy.outlier.ejected()
    returned = [r for r in caplog.records if "back in the pick" in r.getMessage()]
    assert [r.destination for r in returned] == ["svc/v1"]  # type: ignore[attr-defined]


async def test_a_weight_0_destination_is_never_drawn_even_when_the_other_is_not_ready(
    running, upstreams
) -> None:
    v1, v2 = await upstreams("v1"), await upstreams("v2")
    gw = await running({"svc/v1": v1.url, "svc/v2": v2.url}, weights=(100, 0))
    await gw.link.set_ready({"svc/v1": False}, "restarting")
    async with httpx.AsyncClient(timeout=DEADLINE_S) as client:
        answers = await _served_by(client, gw.url, 10)
    assert answers == ["503 no healthy upstream"] * 10
    assert v2.calls == {}


async def test_the_admin_api_refuses_unknown_destinations_and_bad_bodies(
    running, upstreams
) -> None:
    v1, v2 = await upstreams("v1"), await upstreams("v2")
    gw = await running({"svc/v1": v1.url, "svc/v2": v2.url})
    with pytest.raises(GatewayLinkError, match=r"404.*no destination svc/v3"):
        await gw.link.set_ready({"svc/v3": False})
    with pytest.raises(GatewayLinkError, match="400"):
        await gw.link._request("PUT", "/endpoints", {"svc/v1": "no"})
    with pytest.raises(GatewayLinkError, match="400"):
        await gw.link._request("PUT", "/endpoints", ["svc/v1"])
    state = await gw.link.state()
    assert state["endpoints"]["svc/v1"]["ready"] is True
    assert {"svc/v1": 70, "svc/v2": 30} in state["routes"].values()


def test_several_destinations_of_total_weight_0_are_refused_as_istio_does(
    tmp_path: Path,
) -> None:
    directory = write_istio_dir(tmp_path / "istio", split(0, 0))
    with pytest.raises(IstioConfigError) as refused:
        load_gateway_config(directory)
    assert any("total destination weight = 0" in p for p in refused.value.problems)


async def _raw(url: str, data: bytes, *, then: bytes | None = None) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        async with asyncio.timeout(DEADLINE_S):
            return await reader.read()
    finally:
        writer.close()


async def test_headers_up_to_envoy_s_60_kib_pass_and_more_is_a_431_that_echoes_nothing(
    running, upstreams
) -> None:
    v1, v2 = await upstreams("v1"), await upstreams("v2")
    gw = await running({"svc/v1": v1.url, "svc/v2": v2.url})
    # 49 KiB of headers (each line under the upstream's own 8 KiB limit): forwarded.
    big = {f"x-big{i}": "b" * (7 * 1024) for i in range(7)}
    async with httpx.AsyncClient(timeout=DEADLINE_S) as client:
        ok = await client.get(f"{gw.url}/", headers=big | PIN_V1)
        assert ok.status_code == 200, ok.text
        assert v1.last_headers["x-big6"] == big["x-big6"]
        secret = "s3cr3t" * 2000  # 12 KB a line, 72 KB in all
        answer = await client.get(
            f"{gw.url}/", headers={f"x-h{i}": secret for i in range(6)} | PIN_V1
        )
    assert answer.status_code == 431
    assert "s3cr3t" not in answer.text and "aiohttp" not in answer.headers.get("server", "")
    # One line over the limit is refused while it is parsed: same answer, HTTP/1.1.
    raw = await _raw(gw.url, b"GET / HTTP/1.1\r\nHost: x\r\nx-long: " + b"z" * 70_000 + b"\r\n\r\n")
    status, _, rest = raw.partition(b"\r\n")
    assert status == b"HTTP/1.1 431 Request Header Fields Too Large", raw[:200]
    assert b"zzzz" not in rest and b"aiohttp" not in rest.lower()


async def test_more_than_100_headers_is_a_431(running, upstreams) -> None:
    v1, v2 = await upstreams("v1"), await upstreams("v2")
    gw = await running({"svc/v1": v1.url, "svc/v2": v2.url})
    headers = b"".join(b"x-h%d: 1\r\n" % i for i in range(101))
    raw = await _raw(gw.url, b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert raw.startswith(b"HTTP/1.1 431 "), raw[:200]


async def test_a_request_that_does_not_parse_is_an_http_1_1_400_that_echoes_nothing(
    running, upstreams
) -> None:
    v1, v2 = await upstreams("v1"), await upstreams("v2")
    gw = await running({"svc/v1": v1.url, "svc/v2": v2.url})
    raw = await _raw(gw.url, b"GET / HTTP/1.1\r\nHost: x\r\nbad header <script>\r\n\r\n")
    status, _, rest = raw.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 400 "), raw[:200]
    assert b"<script>" not in rest and b"aiohttp" not in rest.lower()


async def test_a_body_that_stops_arriving_is_a_408_after_the_stream_idle_timeout(
    running, upstreams
) -> None:
    v1, v2 = await upstreams("v1"), await upstreams("v2")
    limits = EdgeLimits(stream_idle_timeout_s=0.5)
    gw = await running({"svc/v1": v1.url, "svc/v2": v2.url}, limits=limits)
    # Declares 100 bytes, sends 7, then waits: held forever before.
    raw = await _raw(
        gw.url, b"POST /books HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n1234567"
    )
    assert raw.startswith(b"HTTP/1.1 408 "), raw[:200]
    assert raw.endswith(b"stream timeout")
    # A streamed (big) body stalls the same way.
    raw = await _raw(
        gw.url,
        b"POST /books HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 70_000,
    )
    assert raw.startswith(b"HTTP/1.1 408 "), raw[:200]


async def test_headers_that_stop_arriving_are_a_408(running, upstreams) -> None:
    v1, v2 = await upstreams("v1"), await upstreams("v2")
    limits = EdgeLimits(stream_idle_timeout_s=0.5)
    gw = await running({"svc/v1": v1.url, "svc/v2": v2.url}, limits=limits)
    raw = await _raw(gw.url, b"GET / HTTP/1.1\r\nHost: x\r\nx-partial: ")
    assert raw.startswith(b"HTTP/1.1 408 "), raw[:200]
    assert v1.calls == {} and v2.calls == {}


async def test_the_request_headers_timeout_bounds_a_trickle(running, upstreams) -> None:
    v1, v2 = await upstreams("v1"), await upstreams("v2")
    limits = EdgeLimits(request_headers_timeout_s=0.5)
    gw = await running({"svc/v1": v1.url, "svc/v2": v2.url}, limits=limits)
    host, port = gw.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(b"GET / HTTP/1.1\r\n")
        answer = b""
        async with asyncio.timeout(DEADLINE_S):
            while not answer:  # one header byte at a time, never the end
                writer.write(b"x")
                await writer.drain()
                try:
                    answer = await asyncio.wait_for(reader.read(1024), 0.05)
                except TimeoutError:
                    continue
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]


def test_gateway_settings_take_the_timeouts_and_the_admin_socket() -> None:
    from devstack.gateway.settings import load_settings
    from servicekit.settings import Env, SettingsError

    env = Env(
        {
            "GATEWAY_STREAM_IDLE_TIMEOUT_S": "12",
            "GATEWAY_REQUEST_HEADERS_TIMEOUT_S": "3",
            "GATEWAY_ADMIN_SOCKET": "/tmp/x.sock",
        }
    )
    settings = load_settings(env)
    assert settings.limits.stream_idle_timeout_s == 12.0
    assert settings.limits.request_headers_timeout_s == 3.0
    assert settings.admin_socket == Path("/tmp/x.sock")
    with pytest.raises(SettingsError, match="GATEWAY_ADMIN_SOCKET"):
        load_settings(Env({"GATEWAY_ADMIN_SOCKET": "/" + "x" * 200}))
