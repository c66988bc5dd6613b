"""The stack runner's side of the local gateway's admin API (:mod:`devstack.gateway.admin`).

A few HTTP/1.1 requests on the gateway's Unix socket, with asyncio streams: the
runner stays small (no HTTP client library), as in :mod:`devstack.probes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

TIMEOUT_S = 2.0


class GatewayLinkError(Exception):
    """The gateway did not take the request (not running, or an error answer)."""


class GatewayLink:
    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path

    async def set_ready(self, states: dict[str, bool], reason: str = "") -> None:
        """Tell the gateway which destinations are ready; returns once it is in force."""
        await self._request("PUT", "/endpoints", states, {"x-reason": reason})

    async def state(self) -> dict[str, Any]:
        answer = await self._request("GET", "/state")
        if not isinstance(answer, dict):
            raise GatewayLinkError("the gateway's /state is not a JSON object")
        return answer

    async def _request(
        self,
        method: str,
        path: str,
        payload: object = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        body = b"" if payload is None else json.dumps(payload).encode()
        lines = [f"{method} {path} HTTP/1.1", "Host: local-gateway", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items() if v and "\n" not in v]
        if payload is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        try:
            async with asyncio.timeout(TIMEOUT_S):
                reader, writer = await asyncio.open_unix_connection(str(self.socket_path))
                try:
                    writer.write(request)
                    answer = await reader.read()
                finally:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
        except (OSError, TimeoutError) as error:
            raise GatewayLinkError(f"gateway admin socket {self.socket_path}: {error}") from None
        head, _, content = answer.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].split()
        if len(status_line) < 2 or status_line[1] != b"200":
            raise GatewayLinkError(
                f"gateway admin {method} {path}: {b' '.join(status_line[1:]).decode()} "
                f"{content.decode(errors='replace')[:200]}"
            )
        try:
            return json.loads(content)
        except ValueError as error:
            raise GatewayLinkError(f"gateway admin {method} {path}: {error}") from None
