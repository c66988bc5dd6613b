"""The local gateway applies Istio's ``fault`` (delay and abort by percentage, per route).

Aborts through the real proxy in front of a small real upstream (the share of
aborted answers within the exact binomial interval); the delay's draw and
length on the Fault itself, with the sleep recorded (no timing in an assert);
what the gateway cannot apply, refused by name.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import yaml
from devstack.gateway import fault as fault_module
from devstack.gateway.fault import Fault
from devstack.gateway.istio import IstioConfigError, build_gateway_config
from testkit.devstack import GATEWAY_YAML, Upstream, binomial_interval, virtual_service

GatewayFactory = Callable[..., Awaitable[str]]  # the `gateway` fixture (conftest.py)


def _docs(vs: str) -> list[dict[str, Any]]:
    return [*yaml.safe_load_all(GATEWAY_YAML), yaml.safe_load(vs)]


def rule(prefix: str, fault: str) -> str:
    return (
        f"  - match: [{{uri: {{prefix: {prefix}}}}}]\n"
        f"    fault: {fault}\n"
        "    route: [{destination: {host: svc, subset: v1}}]\n"
    )


FAULTS = virtual_service(
    rule("/always", "{abort: {httpStatus: 503, percentage: {value: 100}}}"),
    rule("/never", "{abort: {httpStatus: 503, percentage: {value: 0}}}"),
    rule("/half", "{abort: {httpStatus: 429, percentage: {value: 50}}}"),
    "  - route: [{destination: {host: svc, subset: v1}}]\n",
)


async def test_aborts_by_percentage_per_route(
    gateway: GatewayFactory, upstreams: Callable[[str], Awaitable[Upstream]]
) -> None:
    one = await upstreams("one")
    url = await gateway(FAULTS, {"svc/v1": one.url})
    n = 400
    async with httpx.AsyncClient(timeout=30.0) as client:

        async def statuses(path: str, count: int) -> Counter[int]:
            answers = await asyncio.gather(*(client.get(f"{url}{path}") for _ in range(count)))
            return Counter(answer.status_code for answer in answers)

        always = await client.get(f"{url}/always")
        assert (always.status_code, always.text) == (503, "fault filter abort")
        assert await statuses("/always", 20) == Counter({503: 20})
        assert await statuses("/never", 20) == Counter({200: 20})
        half = await statuses("/half", n)
        assert await statuses("/other", 5) == Counter({200: 5})  # a route without fault
    low, high = binomial_interval(n, 0.5)
    assert set(half) == {200, 429} and low <= half[429] <= high
    # Aborted requests never reached the upstream.
    assert one.calls.get("/always", 0) == 0
    assert one.calls["/half"] == half[200] and one.calls["/never"] == 20


async def test_a_delay_sleeps_its_fixed_delay_for_its_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(fault_module.asyncio, "sleep", record)
    fault = Fault(delay_s=2.5, delay_percent=30.0)
    draws = iter([0.29, 0.31, 0.0, 0.99])  # x 100: below 30 -> delayed
    for _ in range(4):
        assert await fault.inject(lambda: next(draws)) is None  # never an abort
    assert slept == [2.5, 2.5]
    both = Fault(delay_s=1.0, delay_percent=100.0, abort_status=503, abort_percent=100.0)
    answer = await both.inject(lambda: 0.5)
    assert answer is not None and answer.status == 503 and slept[-1] == 1.0  # delay, then abort


def test_parsed_from_the_virtual_service() -> None:
    config = build_gateway_config(
        _docs(
            virtual_service(
                rule(
                    "/x",
                    "{delay: {fixedDelay: 150ms, percentage: {value: 12.5}},"
                    " abort: {httpStatus: 500, percentage: {value: 1}}}",
                ),
                rule("/y", "{delay: {fixedDelay: 2s, percent: 40}}"),
            )
        )
    )
    first, second = config.table.routes
    assert first.fault == Fault(0.15, 12.5, 500, 1.0)
    assert second.fault == Fault(delay_s=2.0, delay_percent=40.0)


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        ("{}", "fault: needs delay or abort"),
        ("{abort: {httpStatus: 503}}", "fault.abort.percentage.value: required"),
        ("{delay: {fixedDelay: 1s}}", "fault.delay.percentage.value: required"),
        ("{delay: {percentage: {value: 5}}}", "fault.delay.fixedDelay: required"),
        (
            "{delay: {exponentialDelay: 1s, percentage: {value: 5}}}",
            "fault.delay.exponentialDelay: not supported",
        ),
        (
            "{abort: {http2Error: x, percentage: {value: 5}}}",
            "fault.abort.http2Error: not supported",
        ),
        ("{abort: {httpStatus: 700, percentage: {value: 5}}}", "expected an HTTP status"),
        ("{abort: {httpStatus: 503, percentage: {value: 120}}}", "expected 0 to 100"),
        ("{abort: {httpStatus: 503, percentage: {value: 5}, extra: 1}}", "extra: unknown"),
    ],
)
def test_what_cannot_be_applied_is_refused_by_name(fault: str, problem: str) -> None:
    with pytest.raises(IstioConfigError) as raised:
        build_gateway_config(_docs(virtual_service(rule("/x", fault))))
    assert any(problem in p for p in raised.value.problems), raised.value.problems
