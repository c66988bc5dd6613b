"""Readiness probes: HTTP 200, gRPC health SERVING, or a TCP port accepting connections."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp

from devstack.services import Probe

_PROBE_TIMEOUT_S = 1.0


async def is_ready(probe: Probe, session: aiohttp.ClientSession) -> bool:
    try:
        if probe.kind == "http":
            return await _http_ok(probe.target, session)
        if probe.kind == "grpc":
            return await _grpc_serving(probe.target)
        return await _tcp_open(probe.target)
    except (OSError, aiohttp.ClientError, TimeoutError):
        return False


async def _http_ok(url: str, session: aiohttp.ClientSession) -> bool:
    timeout = aiohttp.ClientTimeout(total=_PROBE_TIMEOUT_S)
    async with session.get(url, timeout=timeout) as response:
        return response.status == 200


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


async def _tcp_open(address: str) -> bool:
    host, _, port = address.rpartition(":")
    async with asyncio.timeout(_PROBE_TIMEOUT_S):
        _, writer = await asyncio.open_connection(host, int(port))
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
