"""Istio's ``fault`` (HTTPFaultInjection) on a route: delay and abort by percentage.

As Envoy's fault filter applies what Istio translates: a request the route
matched is first delayed by ``delay.fixedDelay`` with the chance
``delay.percentage.value`` % (or the older integer ``delay.percent``), then
aborted with ``abort.httpStatus`` with the chance ``abort.percentage.value`` %:
answered by the gateway itself (body ``fault filter abort``), never forwarded.
The two draws are independent. What the local gateway cannot do is refused by
name: ``delay.exponentialDelay``, ``abort.grpcStatus``, ``abort.http2Error``;
and a percentage left out is refused too (say how many requests, so that a
rehearsal does the same as the mesh).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from devstack.gateway.http1 import local_reply

_FAULT = {"delay", "abort"}
_DELAY = {"fixedDelay", "percentage", "percent", "exponentialDelay"}
_ABORT = {"httpStatus", "percentage", "grpcStatus", "http2Error"}


@dataclass(frozen=True, slots=True)
class Fault:
    delay_s: float = 0.0
    delay_percent: float = 0.0
    abort_status: int = 0
    abort_percent: float = 0.0

    async def inject(self, rand: Callable[[], float] = random.random) -> web.Response | None:
        """Delay (maybe), then the abort answer (maybe); None: forward the request."""
        if self.delay_percent and rand() * 100.0 < self.delay_percent:
            await asyncio.sleep(self.delay_s)
        if self.abort_percent and rand() * 100.0 < self.abort_percent:
            return local_reply(self.abort_status, "fault filter abort")
        return None


def parse_fault(
    raw: Any, where: str, errors: list[str], duration: Callable[[Any, str], float | None]
) -> Fault | None:
    """The route's ``fault``; problems appended to ``errors`` (None then)."""
    before = len(errors)
    spec = _mapping(raw, where, _FAULT, errors)
    if spec is not None and not spec:
        errors.append(f"{where}: needs delay or abort")
    fault = Fault()
    delay = _mapping(spec.get("delay"), f"{where}.delay", _DELAY, errors) if spec else None
    if delay is not None:
        here = f"{where}.delay"
        _refuse(delay, here, ("exponentialDelay",), errors)
        seconds = duration(delay.get("fixedDelay"), f"{here}.fixedDelay")
        if seconds is None:
            errors.append(f"{here}.fixedDelay: required (a duration, e.g. 5s)")
        percent = _percent(delay, here, errors, legacy="percent")
        fault = Fault(delay_s=seconds or 0.0, delay_percent=percent)
    abort = _mapping(spec.get("abort"), f"{where}.abort", _ABORT, errors) if spec else None
    if abort is not None:
        here = f"{where}.abort"
        _refuse(abort, here, ("grpcStatus", "http2Error"), errors)
        status = abort.get("httpStatus")
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status < 600:
            errors.append(f"{here}.httpStatus: expected an HTTP status 200-599, got {status!r}")
            status = 0
        percent = _percent(abort, here, errors)
        fault = Fault(fault.delay_s, fault.delay_percent, status, percent)
    return fault if len(errors) == before else None


def _mapping(raw: Any, where: str, known: set[str], errors: list[str]) -> Mapping[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        errors.append(f"{where}: expected a mapping, got {type(raw).__name__}")
        return None
    errors.extend(f"{where}.{key}: unknown field" for key in raw if key not in known)
    return raw


def _refuse(spec: Mapping[str, Any], where: str, keys: tuple[str, ...], errors: list[str]) -> None:
    unsupported = [key for key in keys if key in spec]
    errors.extend(f"{where}.{key}: not supported by the local gateway" for key in unsupported)


def _percent(
    spec: Mapping[str, Any], where: str, errors: list[str], legacy: str | None = None
) -> float:
    percentage = spec.get("percentage")
    if percentage is None and legacy and legacy in spec:
        value: Any = spec[legacy]
    elif isinstance(percentage, Mapping) and "value" in percentage:
        value = percentage["value"]
    else:
        errors.append(
            f"{where}.percentage.value: required by the local gateway (0-100: how many requests)"
        )
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        errors.append(f"{where}.percentage: expected 0 to 100, got {value!r}")
        return 0.0
    return float(value)
