"""Readiness probes: HTTP 200, gRPC health SERVING, a TCP port accepting connections, or a
command that exits 0 (``pg_isready``).

The HTTP probe is a plain HTTP/1.1 GET on an asyncio stream: the stack runner
stays small (an HTTP client library would add ~25 MB to its RSS for one GET).
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from urllib.parse import urlsplit

from devstack.services import Probe

_PROBE_TIMEOUT_S = 1.0
# The kubelet's agent (kube-probe/<version>): whatever tells probe traffic from
# real traffic in the cluster (the canary verdict leaves it out) does so here too.
USER_AGENT = "kube-probe/stack"


async def is_ready(probe: Probe) -> bool:
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT_S):
            if probe.kind == "http":
                return await _http_ok(probe.target)
            if probe.kind == "grpc":
                return await _grpc_serving(probe.target)
            if probe.kind == "command":
                return await _command_ok(probe.target)
            return await _tcp_open(probe.target)
    except (OSError, ValueError, TimeoutError):
        return False


async def _http_ok(url: str) -> bool:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"User-Agent: {USER_AGENT}\r\nConnection: close\r\n\r\n".encode()
        )
        status_line = await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    fields = status_line.split()
    return len(fields) >= 2 and fields[1] == b"200"


async def _grpc_serving(address: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=_PROBE_TIMEOUT_S)
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


async def _command_ok(command: str) -> bool:
    process = await asyncio.create_subprocess_exec(
        *shlex.split(command),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        return await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _tcp_open(address: str) -> bool:
    host, _, port = address.rpartition(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
