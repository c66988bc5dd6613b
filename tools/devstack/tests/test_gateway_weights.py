"""The gateway follows a canary weights file (GATEWAY_WEIGHTS_FILE) over the Istio files' weights.

A real ``local-gateway`` process in front of two small real upstreams; the test
writes, breaks, outlives an Istio reload of, and removes the weights file, and
waits for what it can observe (who answers, the gateway's log lines).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from devstack.gateway.weights import parse_weights
from testkit.devstack import (
    Upstream,
    names_served,
    save_file,
    split_rule,
    virtual_service,
    wait_for_output,
    write_istio_dir,
)
from testkit.process import REPO_ROOT, ServiceProcess, console_script, free_port

DEADLINE_S = 30.0


def weighted_vs(v1: int, v2: int, timeout: str = "30s") -> str:
    pinned = (
        "  - match: [{uri: {prefix: /pinned}}]\n"
        "    route: [{destination: {host: svc, subset: v1}}]\n"
    )
    return virtual_service(pinned, split_rule(v1, v2, f"timeout: {timeout}"))


async def served_by(url: str, path: str = "/") -> set[str]:
    async with httpx.AsyncClient(timeout=DEADLINE_S) as client:
        return await names_served(client, f"{url}{path}")


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    started = time.monotonic()
    while not await condition():
        assert time.monotonic() - started < DEADLINE_S, f"no {what} after {DEADLINE_S} s"
        await asyncio.sleep(0.05)


async def test_the_gateway_follows_the_weights_file(
    tmp_path: Path, upstreams: Callable[[str], Awaitable[Upstream]]
) -> None:
    one, two = await upstreams("one"), await upstreams("two")
    istio = write_istio_dir(tmp_path / "istio", weighted_vs(100, 0))
    weights = tmp_path / "data" / ".stack" / "weights.json"
    weights.parent.mkdir(parents=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "PORT": str(port),
        "GATEWAY_ISTIO_DIR": str(istio),
        "GATEWAY_UPSTREAMS": f"svc/v1={one.url},svc/v2={two.url}",
        "GATEWAY_WEIGHTS_FILE": str(weights),
        "DD_TRACE_ENABLED": "false",
    }
    gateway = ServiceProcess([console_script("local-gateway")], env, name="gw", cwd=REPO_ROOT)
    with gateway:
        wait_for_output(gateway, r'"listening"', timeout=DEADLINE_S)
        assert await served_by(url) == {"one"}  # no file: the Istio files' weights

        save_file(weights, json.dumps({"weights": {"v1": 0, "v2": 100}}))
        await until(lambda: _is(served_by(url), {"two"}), "switch to v2")
        assert await served_by(url, "/pinned") == {"one"}  # not a v1/v2 split: untouched
        wait_for_output(gateway, r'"canary weights applied".*"routes":1', timeout=DEADLINE_S)

        save_file(weights, "{not json")
        wait_for_output(gateway, r'"canary weights file refused.*"problem":"not JSON"', 5.0)
        assert await served_by(url) == {"two"}  # kept

        save_file(weights, json.dumps({"weights": {"v1": 0, "v2": 100}}))
        save_file(istio / "vs.yaml", weighted_vs(100, 0, timeout="20s"))
        wait_for_output(gateway, r'"routes reloaded"', timeout=DEADLINE_S)
        wait_for_output(gateway, r'"canary weights applied".*"istio reload"', DEADLINE_S)
        assert await served_by(url) == {"two"}  # the file still wins over the edit

        weights.unlink()
        await until(lambda: _is(served_by(url), {"one"}), "the Istio files' weights again")
        wait_for_output(gateway, r"canary weights file removed", timeout=DEADLINE_S)


async def _is(names: Awaitable[set[str]], expected: set[str]) -> bool:
    return await names == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[]", "expected"),
        ('{"weights": {"v1": 100}}', "two subsets"),
        ('{"weights": {"v1": -1, "v2": 101}}', "integer >= 0"),
        ('{"weights": {"v1": 0, "v2": 0}}', "total weight 0"),
        ('{"weights": {"v1": true, "v2": 1}}', "integer >= 0"),
    ],
)
def test_a_weights_file_of_another_shape_is_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_weights(text)
