"""The gateway's admin API on a Unix socket (``GATEWAY_ADMIN_SOCKET``): Envoy's admin port, locally.

A Unix socket under the stack's data directory (mode 0600) rather than a TCP
port: nothing but this machine's user can reach it, and it takes no port.

- ``GET /state``: the routes' weights, each destination's address, readiness
  and outlier state (what ``stack status`` shows).
- ``PUT /endpoints``: ``{"books": true, "text-to-speech/v1": false, ...}``:
  which destinations are ready (the stack runner sends it whenever a service
  stops or starts being ready, and all of it whenever the gateway starts).
  A key that names no destination is a 404; a body that is not such a mapping
  is a 400. The answer comes once the new state is in force.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from aiohttp import web

from devstack.gateway.proxy import Proxy

log = logging.getLogger("devstack.gateway")
MAX_BODY_BYTES = 64 * 1024


def _json(status: int, payload: Any) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(payload, sort_keys=True), content_type="application/json"
    )


def state(proxy: Proxy) -> dict[str, Any]:
    endpoints = proxy.endpoints
    return {
        "routes": {
            route.name: {d.destination.key: d.weight for d in route.destinations}
            for route in proxy.table.routes
        },
        "endpoints": {
            destination.key: {
                "url": url,
                "ready": endpoints.is_ready(destination.key),
                **proxy.outlier.state(destination),
            }
            for destination, url in sorted(proxy.upstreams.items(), key=lambda i: i[0].key)
        },
    }


def admin_app(proxy: Proxy) -> web.Application:
    async def get_state(_: web.Request) -> web.Response:
        return _json(200, state(proxy))

    async def put_endpoints(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return _json(400, {"error": "body: expected a JSON object"})
        if not isinstance(body, dict) or not all(isinstance(v, bool) for v in body.values()):
            return _json(400, {"error": 'body: expected {"host[/subset]": true|false, ...}'})
        unknown = sorted(k for k in body if k not in proxy.endpoints.destinations)
        if unknown:
            return _json(404, {"error": f"no destination {', '.join(unknown)}"})
        reason = request.headers.get("x-reason", "")
        for key, ready in body.items():  # every key is known (checked above)
            proxy.endpoints.set_ready(key, ready, reason)
        return _json(200, proxy.endpoints.snapshot())

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/state", get_state)
    app.router.add_put("/endpoints", put_endpoints)
    return app


def _clear(socket_path: Path) -> None:
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    if socket_path.is_socket():
        socket_path.unlink()  # a stale one (a gateway killed before it could remove it)


async def start_admin(proxy: Proxy, socket_path: Path) -> web.AppRunner:
    """Serve the admin API on ``socket_path`` (a stale socket file there is replaced)."""
    _clear(socket_path)
    runner = web.AppRunner(admin_app(proxy), access_log=None, handle_signals=False)
    await runner.setup()
    await web.UnixSite(runner, str(socket_path)).start()
    os.chmod(socket_path, 0o600)
    log.info("admin API listening", extra={"socket": str(socket_path)})
    return runner
