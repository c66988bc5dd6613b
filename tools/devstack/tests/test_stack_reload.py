"""`stack up` as a dev loop: edits to a copy of the repository reach the running stack.

One stack per module, started with the test environment's `stack` from a
temporary copy of the workspace (so the services run, and reload, the copy's
sources: the stack puts the copy's src/ directories on PYTHONPATH), with its
own copy of k8s/istio left as it is (Istio's 30 s baseEjectionTime: a restarted
v1 is out of the pick while it restarts, not ejected).
Each test puts back what it edited, so they do not depend on their order.
Deadlines are generous (the machine is shared); the measured times are printed.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from testkit.devstack import (
    PIN_V1,
    V1_APP,
    VIRTUAL_SERVICES,
    RunningStack,
    binomial_interval,
    count_versions,
    started_pids,
)

pytestmark = pytest.mark.slow

DEADLINE_S = 90.0
N = 1000
BOOKS_ROUTES = Path("services/books/src/books/routes.py")
ROUTES_RELOADED = r"local-gateway +\| .*INFO routes reloaded"


def _poll_until(check: Callable[[], bool], what: str) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < DEADLINE_S, f"no {what} after {DEADLINE_S} s"
        time.sleep(0.05)
    return time.monotonic() - started


def _banner(headers: dict[str, str], url: str) -> str:
    try:
        response = httpx.get(f"{url}/", headers=headers, timeout=10.0)
    except httpx.HTTPError:
        return ""
    return response.text if response.status_code == 200 else ""


def test_services_run_the_copy_s_sources_with_reload_on(stack: RunningStack) -> None:
    assert f"code            {stack.root} (live reload on)" in stack.output()


def test_an_edited_handler_answers_after_one_restart_of_its_service_only(
    stack: RunningStack,
) -> None:
    original = stack.read(V1_APP)
    assert 'BANNER = "text-to-speech v1 (stable)' in original
    pids = started_pids(stack.output())
    mark = len(stack.output())
    try:
        started = time.monotonic()
        for n in range(3):  # a burst of saves: one restart
            stack.save(V1_APP, original.replace("(stable)", f"(stable, edit {n})"))
        _poll_until(lambda: "(stable, edit 2)" in _banner(PIN_V1, stack.url), "new answer")
        seconds = time.monotonic() - started
        print(f"\nedited handler answered {seconds:.2f} s after the save")
        after = stack.output()[mark:]
        assert f"{V1_APP} changed: restarting tts-v1\n" in after, after
        assert after.count("changed: restarting") == 1, after
        now = started_pids(stack.output())
        assert len(now["tts-v1"]) == len(pids["tts-v1"]) + 1
        assert {name: now[name] for name in now if name != "tts-v1"} == {
            name: pids[name] for name in pids if name != "tts-v1"
        }
    finally:
        stack.save(V1_APP, original)
        _poll_until(lambda: "(stable)" in _banner(PIN_V1, stack.url), "original answer")


def test_an_edit_reloads_through_the_warm_parent(stack: RunningStack) -> None:
    """The service's process (its warm parent) stays; it forks a child that runs the edit."""
    original = stack.read(V1_APP)
    parent = started_pids(stack.output())["tts-v1"][0]
    mark = len(stack.output())
    try:
        stack.save(V1_APP, original.replace("(stable)", "(stable, warm)"))
        _poll_until(lambda: "(stable, warm)" in _banner(PIN_V1, stack.url), "new answer")
        after = stack.output()[mark:]
        forked = re.findall(
            rf"started tts-v1 \(pid (\d+)\) from its warm parent \(pid {parent}\)", after
        )
        assert len(forked) == 1, after
        assert re.search(r"stopped tts-v1's child pid \d+ \(exit status 0\)", after), after
        assert os.path.exists(f"/proc/{parent}") and os.path.exists(f"/proc/{forked[0]}")
    finally:
        stack.save(V1_APP, original)
        _poll_until(lambda: "(stable)" in _banner(PIN_V1, stack.url), "original answer")


def test_a_generated_grpc_module_edit_restarts_cold(stack: RunningStack) -> None:
    """A warm parent keeps the imported protobuf descriptors: a *_pb2 change needs a new one."""
    generated = Path("protos/src/tts/v1/tts_pb2.py")
    parent = started_pids(stack.output())["tts-backend"][-1]
    mark = len(stack.output())
    # What imports the protos is ready again after the edit, and after its undoing.
    ready = [rf"^stack +\| {name} is ready again$" for name in ("tts-backend", "tts-v1", "tts-v2")]
    with stack.restoring(generated, *ready) as original:
        stack.save(generated, original + "\n# edited while the stack runs\n")
        for pattern in ready:
            stack.wait_for_line(pattern, mark)
        after = stack.output()[mark:]
        assert re.search(r"stopped tts-backend \(exit status 0\)", after), after
        new = started_pids(stack.output())["tts-backend"][-1]
        assert new != parent and f"started tts-backend (pid {new})\n" in after, after
        assert "from its warm parent" not in after


def test_a_restarted_service_keeps_its_port_and_data(stack: RunningStack) -> None:
    created = httpx.post(
        f"{stack.url}/books", json={"title": "Kept", "author": "across a restart"}, timeout=30
    )
    assert created.status_code == 201, created.text
    book = created.json()
    books_ready = r"^stack +\| books is ready again$"
    mark = len(stack.output())
    with stack.restoring(BOOKS_ROUTES, books_ready) as original:
        stack.save(BOOKS_ROUTES, original + "\n# edited while the stack runs\n")
        stack.wait_for_line(books_ready, mark)
    response = httpx.get(f"{stack.url}/books/{book['id']}", timeout=30)
    assert response.status_code == 200 and response.json() == book
    direct = httpx.get(f"http://127.0.0.1:{stack.ports.books}/books/{book['id']}", timeout=30)
    assert direct.json() == book


def test_a_syntax_error_keeps_the_stack_up_and_the_next_save_recovers(
    stack: RunningStack,
) -> None:
    original = stack.read(V1_APP)
    mark = len(stack.output())
    restored = False
    try:
        stack.save(V1_APP, original + "\ndef broken(:\n")
        stack.wait_for_line(r"tts-v1 exited \(exit status 1\) after the edit", mark)
        report = stack.output()[mark:]
        assert "the other services keep running" in report
        assert re.search(r"^stack +\|   tts-v1 \| SyntaxError: ", report, re.MULTILINE), report
        # Everything else is still served; unpinned requests go to v2 (v1 is down).
        assert httpx.get(f"{stack.url}/books", timeout=30).status_code == 200
        assert "v2 (canary)" in _banner({}, stack.url)
        assert stack.proc.is_running()
        assert "stopping the stack" not in stack.output()[mark:]
        fixed = stack.output()
        stack.save(V1_APP, original)
        restored = True
        stack.wait_for_line(r"^stack +\| tts-v1 is ready again$", len(fixed))
        assert "v1 (stable)" in _banner(PIN_V1, stack.url)
    finally:
        if not restored:
            stack.save(V1_APP, original)


async def test_a_weight_edit_changes_the_split(stack: RunningStack) -> None:
    original = stack.read(VIRTUAL_SERVICES)
    assert original.count("weight: 70") == 2 and original.count("weight: 30") == 2
    mark = len(stack.output())
    with stack.restoring(VIRTUAL_SERVICES, ROUTES_RELOADED):
        stack.save(
            VIRTUAL_SERVICES,
            original.replace("weight: 70", "weight: 50").replace("weight: 30", "weight: 50"),
        )
        seconds = stack.wait_for_line(ROUTES_RELOADED, mark)
        print(f"\nnew weights applied {seconds:.2f} s after the save (upper bound)")
        counts = await count_versions(stack.url, N)
        # Outside Binomial(1000, 0.3)'s bounds and inside 0.5's, each failing < 1e-6.
        low, high = binomial_interval(N, 0.5, confidence=1 - 1e-6)
        old_low, old_high = binomial_interval(N, 0.3, confidence=1 - 1e-6)
        assert high < old_low or low > old_high
        assert counts["v1"] + counts["v2"] == N, counts
        assert low <= counts["v2"] <= high, (counts, (low, high))


async def test_a_broken_virtual_service_keeps_the_previous_routes(stack: RunningStack) -> None:
    original = stack.read(VIRTUAL_SERVICES)
    assert original.count("      timeout: 5s\n") >= 1
    broken = original.replace("weight: 70", "weight: 0").replace("weight: 30", "weight: 100")
    broken = broken.replace("      timeout: 5s\n", "      timeout: 5s\n      mirror: {}\n", 1)
    mark = len(stack.output())
    with stack.restoring(VIRTUAL_SERVICES, ROUTES_RELOADED):
        stack.save(VIRTUAL_SERVICES, broken)
        stack.wait_for_line(r"routes not reloaded, keeping the previous ones", mark)
        [line] = [
            line
            for line in stack.output()[mark:].splitlines()
            if "routes not reloaded, keeping the previous ones" in line
        ]
        assert f"file={VIRTUAL_SERVICES}" in line, line
        assert re.search(r"problem=VirtualService \S+\.http\[\d+\]\.mirror: not supported", line)
        # The 0/100 weights were not applied: v1 still answers its share.
        counts = await count_versions(stack.url, 200)
        assert counts["v1"] > 0 and counts["v1"] + counts["v2"] == 200, counts
