"""Readiness decides, as in the cluster: a restarted service is routable the moment it is ready.

One stack per module, from a copy of the workspace whose k8s/istio is left as
it is (Istio's baseEjectionTime of 30 s: before the fix, a restart under
traffic left the service out for that long). Every test waits for what it can
observe (a line of the stack, an answer); none measures time.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from devstack.reload import STEP_MS
from testkit.devstack import (
    PIN_V1,
    STACK_SERVICES,
    V1_APP,
    VIRTUAL_SERVICES,
    RunningStack,
    binomial_interval,
    count_versions,
    started_pids,
)
from testkit.process import console_script

pytestmark = pytest.mark.slow

DEADLINE_S = 120.0
GATEWAY_ROUTING = Path("tools/devstack/src/devstack/gateway/routing.py")
V1_READY = r"^stack +\| tts-v1 is ready again$"


@dataclass
class Poller:
    """Requests through the gateway as fast as they come back (a browser, `client poll`)."""

    url: str
    headers: dict[str, str]
    path: str = "/"
    answers: list[tuple[int, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=30.0) as client:
            while not self.stop.is_set():
                try:
                    response = client.get(self.url + self.path, headers=self.headers)
                    self.answers.append((response.status_code, response.text))
                except httpx.HTTPError as error:
                    self.answers.append((0, type(error).__name__))
                time.sleep(0.01)


@contextlib.contextmanager
def _polling(url: str, headers: dict[str, str], path: str = "/") -> Iterator[Poller]:
    """A Poller in a thread while the block runs; its answers stay readable after."""
    poller = Poller(url, headers, path)
    thread = threading.Thread(target=poller.run, daemon=True)
    thread.start()
    try:
        yield poller
    finally:
        poller.stop.set()
        thread.join()


def _get(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(f"{url}/", headers=headers or {}, timeout=30.0)


def test_an_edit_under_traffic_is_answered_the_moment_the_service_is_ready(
    stack: RunningStack,
) -> None:
    """The issue's scenario: v1 edited while requests pinned to v1 keep coming."""
    with stack.restoring(V1_APP, V1_READY) as original, _polling(stack.url, PIN_V1) as poller:
        mark = len(stack.output())
        stack.save(V1_APP, original.replace("(stable)", "(stable, edited)"))
        stack.wait_for_line(V1_READY, mark)
        # The first request after "ready" is answered by the new code: no ejection to wait out.
        answer = _get(stack.url, PIN_V1)
        assert answer.status_code == 200, answer.text
        assert "(stable, edited)" in answer.text
        after = stack.output()[mark:]
        assert "destination ejected" not in after, after
        assert re.search(r"endpoint not ready.*destination=text-to-speech/v1", after), after
        assert re.search(r"endpoint ready: back in the pick.*text-to-speech/v1", after), after
    # While v1 was away the pinned route had no endpoint: Envoy's 503, nothing else.
    failures = {text for status, text in poller.answers if status != 200}
    assert failures <= {"no healthy upstream"}, failures
    assert any(status == 200 for status, _ in poller.answers)


async def test_the_split_is_70_30_again_after_an_edit_under_load(stack: RunningStack) -> None:
    with stack.restoring(V1_APP, V1_READY) as original, _polling(stack.url, {}) as poller:
        mark = len(stack.output())
        stack.save(V1_APP, original + "\n# edited under load\n")
        stack.wait_for_line(V1_READY, mark)
    # Unpinned requests went to v2 while v1 restarted, none failed.
    assert {status for status, _ in poller.answers} == {200}, poller.answers[-5:]
    n = 1000
    counts = await count_versions(stack.url, n)
    low, high = binomial_interval(n, 0.3)
    assert low <= counts["v2"] <= high, counts
    assert "destination ejected" not in stack.output()


def test_a_burst_of_saves_is_one_restart(stack: RunningStack) -> None:
    """Saves closer together than the watcher's step are one batch, so one restart.

    The test paces its saves 20 ms apart; on a loaded machine the test itself can
    stall longer than the step between two saves, which rightly makes two batches.
    So each such stall (measured, not assumed) allows one more restart, and with no
    stall the burst must be exactly one restart.
    """
    pids = started_pids(stack.output())["tts-v1"]
    mark = len(stack.output())
    stalls = 0
    with stack.restoring(V1_APP, V1_READY) as original:
        last = time.monotonic()
        for n in range(20):
            stack.save(V1_APP, original + f"\n# save {n}\n")
            now = time.monotonic()
            stalls += n > 0 and now - last >= STEP_MS / 1000
            last = now
            time.sleep(0.02)  # an editor's autosave: saves 20 ms apart (pacing, not a check)
        stack.wait_for_line(V1_READY, mark)
        assert "# save 19" in stack.read(V1_APP)
        restarts = stack.output()[mark:].count("changed: restarting tts-v1")
        assert 1 <= restarts <= 1 + stalls, (stalls, stack.output()[mark:])
        if stalls == 0:
            assert len(started_pids(stack.output())["tts-v1"]) == len(pids) + 1


def test_a_killed_service_is_back_in_the_pick_as_soon_as_it_is_ready(stack: RunningStack) -> None:
    with _polling(stack.url, PIN_V1):
        mark = len(stack.output())
        pid = started_pids(stack.output())["tts-v1"][-1]
        os.kill(pid, signal.SIGKILL)
        stack.wait_for_line(V1_READY, mark)
        answer = _get(stack.url, PIN_V1)
        assert answer.status_code == 200, answer.text
        assert "destination ejected" not in stack.output()[mark:]


def test_a_service_failing_its_readiness_probe_leaves_the_pick_until_it_passes(
    stack: RunningStack,
) -> None:
    """tts-v1's /readyz needs the backend: a frozen backend makes it fail twice in a row."""
    # The backend's group: its warm parent and the child that serves (and its workers).
    backend = started_pids(stack.output())["tts-backend"][0]
    mark = len(stack.output())
    os.killpg(backend, signal.SIGSTOP)
    try:
        stack.wait_for_line(
            r"tts-v1 failed its readiness probe 2 times in a row .*out of the gateway's pick",
            mark,
        )
        answer = _get(stack.url, PIN_V1)
        assert (answer.status_code, answer.text) == (503, "no healthy upstream")
    finally:
        os.killpg(backend, signal.SIGCONT)
    stack.wait_for_line(r"^stack +\| tts-v1 passes its readiness probe again$", mark)
    assert _get(stack.url, PIN_V1).status_code == 200


def test_stack_status_shows_each_service_and_the_gateway_s_weights(stack: RunningStack) -> None:
    result = subprocess.run(
        [console_script("stack"), "status", f"--data-dir={stack.data_dir}"],
        capture_output=True,
        text=True,
        cwd=stack.root,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for name in STACK_SERVICES:
        assert re.search(rf"^{re.escape(name)} +running +\S+ +\d+ +\d+ ", text, re.MULTILINE), text
    assert "text-to-speech/v1 70, text-to-speech/v2 30" in text
    assert f"text-to-speech/v1 http://127.0.0.1:{stack.ports.tts_v1}: ready" in text
    as_json = subprocess.run(
        [console_script("stack"), "status", f"--data-dir={stack.data_dir}", "--format=json"],
        capture_output=True,
        text=True,
        cwd=stack.root,
        timeout=60,
    )
    document = json.loads(as_json.stdout)
    assert document["services"]["tts-v1"]["port"] == stack.ports.tts_v1
    assert document["gateway"]["endpoints"]["books"]["ready"] is True


def test_stack_status_without_a_stack_says_so(tmp_path: Path) -> None:
    result = subprocess.run(
        [console_script("stack"), "status", f"--data-dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("stack: no stack is running on ")


def test_a_gateway_that_refused_a_broken_routing_file_starts_when_it_is_fixed(
    stack: RunningStack,
) -> None:
    routes = stack.read(VIRTUAL_SERVICES)
    code = stack.read(GATEWAY_ROUTING)
    broken = routes.replace("weight: 70", "weight: 0").replace("weight: 30", "weight: 0")
    mark = len(stack.output())
    try:
        stack.save(VIRTUAL_SERVICES, broken)  # the running gateway keeps its routes
        stack.wait_for_line(r"routes not reloaded, keeping the previous ones", mark)
        stack.save(GATEWAY_ROUTING, code + "\n# edited\n")  # its restart refuses the file
        stack.wait_for_line(r"total destination weight = 0", mark)
        stack.wait_for_line(
            r"local-gateway exited \(exit status 2\) after the edit; .* on the next save "
            r"of its source or of a routing file",
            mark,
        )
        fixed = len(stack.output())
        stack.save(VIRTUAL_SERVICES, routes)
        stack.wait_for_line(r"changed: starting local-gateway again with the routes", fixed)
        stack.wait_for_line(r"^stack +\| local-gateway is ready again$", fixed)
        assert _get(stack.url).status_code == 200
    finally:
        stack.save(GATEWAY_ROUTING, code)
        stack.save(VIRTUAL_SERVICES, routes)
        mark = len(stack.output())
        stack.wait_for_line(r"^stack +\| local-gateway is ready again$", mark)


def test_a_deleted_and_recreated_file_is_routable_once_the_service_is_back(
    stack: RunningStack,
) -> None:
    """Books' routes deleted (books cannot start), then put back: the gateway follows books."""
    routes = Path("services/books/src/books/routes.py")
    original = stack.read(routes)
    mark = len(stack.output())
    restored = False
    try:
        with _polling(stack.url, {}, "/books"):
            (stack.root / routes).unlink()
            stack.wait_for_line(r"books exited \(exit status \d+\) after the edit", mark)
            back = len(stack.output())
            stack.save(routes, original)
            restored = True
            stack.wait_for_line(r"^stack +\| books is ready again$", back)
            answer = httpx.get(f"{stack.url}/books", timeout=30.0)
            assert answer.status_code == 200, answer.text
            assert "destination ejected" not in stack.output()[mark:]
    finally:
        if not restored:
            stack.save(routes, original)
