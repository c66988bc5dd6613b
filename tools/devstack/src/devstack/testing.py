"""Test and benchmark helpers for devstack: Istio YAML on disk, small real HTTP upstreams.

Not used by the stack itself; imported by `tools/devstack/tests` and `bench/`.
"""

from __future__ import annotations

import asyncio
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from servicekit.testing import free_port

GATEWAY_YAML = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: apps}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc, namespace: apps}
spec:
  host: svc.apps.svc.cluster.local
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
"""


def write_istio_dir(directory: Path, virtual_service: str, extra: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "gateway.yaml").write_text(GATEWAY_YAML + extra)
    (directory / "vs.yaml").write_text(textwrap.dedent(virtual_service))
    return directory


@dataclass
class Upstream:
    """A real HTTP server on loopback that answers with its name and counts requests."""

    name: str
    port: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    fail_first: int = 0
    fail_status: int = 503
    delay_first_s: float = 0.0
    last_headers: dict[str, str] = field(default_factory=dict)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        count = self.calls[path] = self.calls.get(path, 0) + 1
        self.last_headers = dict(request.headers)
        headers = {"x-served-by": self.name}
        if path == "/reset" and count <= self.fail_first:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if path == "/slow" and count == 1 and self.delay_first_s:
            await asyncio.sleep(self.delay_first_s)
        if path.startswith("/fail") and count <= self.fail_first:
            return web.Response(status=self.fail_status, headers=headers, text="failing")
        if path == "/big":
            return web.Response(body=b"x" * (1024 * 1024 + 7), headers=headers)
        body = await request.read()
        return web.json_response(
            {"name": self.name, "path": request.path_qs, "body": body.decode()}, headers=headers
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
