"""The gateway follows edits to its Istio directory while it serves (GATEWAY_RELOAD).

The real proxy and its real file watcher run in the test's event loop, in front
of small real HTTP upstreams; the tests edit the YAML on disk and wait for what
they can observe (the routes the proxy uses, the log line), never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import logging
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from devstack.gateway.proxy import Proxy
from devstack.gateway.reload import RouteReloader, locate, resource_files
from devstack.gateway.settings import GatewaySettings
from testkit.devstack import Upstream, names_served, save_file, serving_gateway, write_istio_dir

DEADLINE_S = 30.0


def weighted_vs(v1: int, v2: int, extra: str = "") -> str:
    return f"""\
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {{name: svc, namespace: apps}}
        spec:
          hosts: ['*']
          gateways: [apps/gw]
          http:
          - route:
            - {{destination: {{host: svc, subset: v1}}, weight: {v1}}}
            - {{destination: {{host: svc, subset: v2}}, weight: {v2}}}
        {extra}"""


@dataclass
class Reloading:
    url: str
    proxy: Proxy
    istio: Path
    one: Upstream
    two: Upstream

    def write(self, text: str) -> None:
        save_file(self.istio / "vs.yaml", textwrap.dedent(text))

    async def wait_for(self, condition: Callable[[], bool], what: str) -> float:
        started = time.monotonic()
        while not condition():
            assert time.monotonic() - started < DEADLINE_S, f"no {what} after {DEADLINE_S} s"
            await asyncio.sleep(0.02)
        return time.monotonic() - started

    async def served_by(self, client: httpx.AsyncClient) -> set[str]:
        return await names_served(client, f"{self.url}/")


@pytest.fixture
async def reloading(
    tmp_path: Path, upstreams: Callable[[str], Awaitable[Upstream]]
) -> AsyncIterator[Reloading]:
    one, two = await upstreams("one"), await upstreams("two")
    istio = write_istio_dir(tmp_path / "istio", weighted_vs(100, 0))
    upstream_urls = {"svc/v1": one.url, "svc/v2": two.url}
    async with serving_gateway(istio, upstream_urls) as gateway:
        settings = GatewaySettings(
            host="127.0.0.1",
            port=gateway.port,
            istio_dir=istio,
            gateway_name=None,
            upstreams=upstream_urls,
            max_body_bytes=1024 * 1024,
            log_requests=False,
        )
        stop = asyncio.Event()
        reloader = RouteReloader(gateway.proxy, settings, gateway.config.warnings)
        watching = asyncio.create_task(reloader.watch(stop))
        try:
            yield Reloading(gateway.url, gateway.proxy, istio, one, two)
        finally:
            stop.set()
            await asyncio.wait_for(watching, DEADLINE_S)


def _messages(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == text]


async def test_a_weight_edit_applies_to_new_requests(
    reloading: Reloading, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devstack.gateway")
    async with httpx.AsyncClient(timeout=DEADLINE_S) as client:
        assert await reloading.served_by(client) == {"one"}
        before = reloading.proxy.table
        reloading.write(weighted_vs(0, 100))
        seconds = await reloading.wait_for(lambda: reloading.proxy.table is not before, "reload")
        print(f"weight edit applied {seconds:.3f} s after the write")
        assert await reloading.served_by(client) == {"two"}
    [record] = _messages(caplog, "routes reloaded")
    assert record.routes == {"VirtualService apps/svc.http[0]": {"svc/v1": 0, "svc/v2": 100}}
    assert [Path(f).name for f in record.files] == ["vs.yaml"]


async def test_a_request_in_flight_keeps_its_route(reloading: Reloading) -> None:
    """A slow request to `one` started before the edit is answered by `one`."""
    reloading.one.delay_first_s = 2.0
    async with httpx.AsyncClient(timeout=DEADLINE_S) as client:
        in_flight = asyncio.create_task(client.get(f"{reloading.url}/slow"))
        await reloading.wait_for(lambda: reloading.one.calls.get("/slow") == 1, "slow request")
        before = reloading.proxy.table
        reloading.write(weighted_vs(0, 100))
        await reloading.wait_for(lambda: reloading.proxy.table is not before, "reload")
        assert not in_flight.done()  # the reload did not wait for it, nor drop it
        assert await reloading.served_by(client) == {"two"}
        answer = await in_flight
    assert answer.status_code == 200 and answer.json()["name"] == "one"
    assert reloading.two.calls.get("/slow") is None


async def test_an_unsupported_field_keeps_the_routes_and_names_file_and_field(
    reloading: Reloading, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devstack.gateway")
    before = reloading.proxy.table
    broken = weighted_vs(0, 100).replace(
        "  - route:", "  - mirror: {host: svc}\n            route:"
    )
    reloading.write(broken)
    await reloading.wait_for(
        lambda: bool(_messages(caplog, "routes not reloaded, keeping the previous ones")),
        "refusal line",
    )
    [record] = _messages(caplog, "routes not reloaded, keeping the previous ones")
    assert record.file.endswith("vs.yaml"), record.file
    assert record.problem == (
        "VirtualService apps/svc.http[0].mirror: not supported by the local gateway"
    )
    assert reloading.proxy.table is before
    async with httpx.AsyncClient(timeout=DEADLINE_S) as client:
        assert await reloading.served_by(client) == {"one"}
        # The next good save applies.
        reloading.write(weighted_vs(0, 100))
        await reloading.wait_for(lambda: reloading.proxy.table is not before, "reload")
        assert await reloading.served_by(client) == {"two"}


async def test_yaml_that_does_not_parse_is_one_line_naming_the_file(
    reloading: Reloading, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devstack.gateway")
    before = reloading.proxy.table
    reloading.write(weighted_vs(0, 100, extra="not: [valid"))
    await reloading.wait_for(
        lambda: bool(_messages(caplog, "routes not reloaded, keeping the previous ones")),
        "refusal line",
    )
    record = _messages(caplog, "routes not reloaded, keeping the previous ones")[0]
    assert record.file.endswith("vs.yaml")
    assert "vs.yaml: not valid YAML" in record.problem and "\n" not in record.problem
    assert reloading.proxy.table is before


async def test_a_destination_without_address_keeps_the_routes(
    reloading: Reloading, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devstack.gateway")
    before = reloading.proxy.table
    reloading.write(weighted_vs(0, 100).replace("host: svc, subset: v2", "host: other"))
    await reloading.wait_for(
        lambda: bool(_messages(caplog, "routes not reloaded, keeping the previous ones")),
        "refusal line",
    )
    record = _messages(caplog, "routes not reloaded, keeping the previous ones")[0]
    assert "no local address for destination other" in record.problem
    assert reloading.proxy.table is before


def test_locate_names_the_file_of_the_resource(tmp_path: Path) -> None:
    istio = write_istio_dir(tmp_path / "istio", weighted_vs(1, 1))
    owners = resource_files(istio)
    assert owners["VirtualService apps/svc"] == str(istio / "vs.yaml")
    assert owners["DestinationRule apps/svc"] == str(istio / "gateway.yaml")
    problem = "VirtualService apps/svc.http[0].mirror: not supported by the local gateway"
    assert locate(problem, owners) == str(istio / "vs.yaml")
    assert locate(f"{istio / 'x.yaml'}: not valid YAML: ...", owners) == str(istio / "x.yaml")
    assert locate("no Gateway with selector istio: ingressgateway in x", owners) is None
