"""`client canary` on real processes: a real local gateway following its weights file, two
stand-in fronts traced like the real ones (``stand_in_front.py``) and a real ddapm-test-agent.

A healthy v2 is promoted to 100%, a slow v2 is rolled back to 0% at its first step, and
the gateway's own answers confirm the final weights; Ctrl-C restores the weights found
at start; bad input is one line and leaves the weights as they were.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from client_runs import run_client, started_client
from testkit.devstack import (
    split_rule,
    virtual_service,
    wait_for_output,
    wait_for_weights,
    write_istio_dir,
)
from testkit.process import REPO_ROOT, ServiceProcess, console_script, free_port
from testkit.testagent import ApmTestAgent

HERE = Path(__file__).parent
FRONT = HERE / "stand_in_front.py"


@dataclass
class Stage:
    agent: ApmTestAgent
    gateway_url: str
    weights: Path
    gateway: ServiceProcess

    def canary(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_client("canary", *self.flags(), *args)

    def flags(self) -> list[str]:
        return [
            *("--agent", self.agent.url, "--gateway", self.gateway_url),
            *("--weights-file", str(self.weights), "--mix", "root=1"),
        ]

    def served(self, n: int = 40) -> Counter[str]:
        """Who answers ``n`` requests, once the gateway has applied the weights file."""
        wait_for_weights(self.gateway, json.loads(self.weights.read_text())["weights"])
        with httpx.Client(timeout=10.0) as client:
            return Counter(
                client.get(f"{self.gateway_url}/").headers["x-tts-version"] for _ in range(n)
            )


def start_stage(agent: ApmTestAgent, tmp_path: Path, delays_ms: dict[str, int]) -> Iterator[Stage]:
    fronts, upstreams = [], []
    for version, delay in delays_ms.items():
        port = free_port()
        env = {**agent.tracer_env(), "PORT": str(port), "FRONT_VERSION": version}
        env["DELAY_MS"] = str(delay)
        front = ServiceProcess([sys.executable, str(FRONT)], env, name=f"front-{version}")
        fronts.append(front)
        upstreams.append(f"svc/{version}=http://127.0.0.1:{port}")
    istio = write_istio_dir(tmp_path / "istio", virtual_service(split_rule(70, 30)))
    weights = tmp_path / "data" / ".stack" / "weights.json"
    weights.parent.mkdir(parents=True)
    port = free_port()
    gateway = ServiceProcess(
        [console_script("local-gateway")],
        {
            "PORT": str(port),
            "GATEWAY_ISTIO_DIR": str(istio),
            "GATEWAY_UPSTREAMS": ",".join(upstreams),
            "GATEWAY_WEIGHTS_FILE": str(weights),
            "DD_TRACE_ENABLED": "false",
        },
        name="gateway",
        cwd=REPO_ROOT,
    )
    try:
        for front in fronts:
            front.start()
        for front, upstream in zip(fronts, upstreams, strict=True):
            front.wait_http_ready(upstream.split("=", 1)[1] + "/")
        gateway.start()
        wait_for_output(gateway, r'"listening"', timeout=30)
        httpx.get(f"{agent.url}/test/session/clear", timeout=5.0).raise_for_status()
        yield Stage(agent, f"http://127.0.0.1:{port}", weights, gateway)
    finally:
        gateway.stop()
        for front in fronts:
            front.stop()


@pytest.fixture
def healthy(agent: ApmTestAgent, tmp_path: Path) -> Iterator[Stage]:
    yield from start_stage(agent, tmp_path, {"v1": 2, "v2": 2})


@pytest.fixture
def slow(agent: ApmTestAgent, tmp_path: Path) -> Iterator[Stage]:
    yield from start_stage(agent, tmp_path, {"v1": 2, "v2": 40})


# Each step: 3 s of 40 requests/s through the gateway, judged with a latency margin of
# +50% (two processes of the same code differ by a few percent on a busy machine).
STEPS = ("--steps", "50,100", "--interval", "3s", "--rate", "40", "--latency-margin", "0.5")


def test_a_healthy_canary_is_promoted_to_100_percent(healthy: Stage) -> None:
    result = healthy.canary(*STEPS, "--format", "json")

    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert [(s["weight"], s["verdict"]) for s in report["steps"]] == [(50, "promote"), (100, "set")]
    first = report["steps"][0]["requests"]
    assert first["v1"] >= 30 and first["v2"] >= 30
    assert report["result"] == "promoted"
    assert report["final_weights"] == {"v1": 0, "v2": 100}
    assert json.loads(healthy.weights.read_text()) == {"weights": {"v1": 0, "v2": 100}}
    assert healthy.served() == Counter({"v2": 40})
    lines = result.stderr.splitlines()
    assert re.match(r"step 1/2: v2 at 50% for \d+s, \d+ v1/\d+ v2: PROMOTE", lines[0]), lines
    assert lines[1] == "step 2/2: v2 at 100%: promoted"


def test_a_slow_canary_is_rolled_back_before_the_last_step(slow: Stage, tmp_path: Path) -> None:
    plot = tmp_path / "rollout.png"
    result = slow.canary(*STEPS, "--plot", str(plot))

    assert result.returncode == 1, result.stdout + result.stderr
    assert "v2 is slower than v1" in result.stderr
    table = result.stdout.splitlines()
    assert table[0].split()[:2] == ["step", "v2"] and table[1].split()[-2:] == ["roll", "back"]
    assert table[-1] == "result: ROLLED BACK - weights now v1 100%, v2 0%"
    assert json.loads(slow.weights.read_text()) == {"weights": {"v1": 100, "v2": 0}}
    assert slow.served() == Counter({"v1": 40})
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and plot.stat().st_size > 10_000


def test_a_canary_that_keeps_holding_is_rolled_back_after_max_holds(healthy: Stage) -> None:
    # More samples asked for than a step can give: every analysis says hold.
    result = healthy.canary(*STEPS, "--min-samples", "100000", "--max-holds", "1")

    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and all(": HOLD - " in line for line in lines)
    # Analysed again from the step's start: the second analysis counts the first's requests too.
    counts = [[int(n) for n in re.findall(r"(\d+) v[12]", line)] for line in lines]
    assert all(after > before for before, after in zip(*counts, strict=True)), lines
    table = result.stdout.splitlines()
    assert table[1].split()[-3:] == ["2", "roll", "back"]  # 2 holds, then rolled back
    assert json.loads(healthy.weights.read_text()) == {"weights": {"v1": 100, "v2": 0}}


def test_ctrl_c_restores_the_weights_found_at_start(healthy: Stage) -> None:
    found = '{"weights": {"v1": 80, "v2": 20}}\n'
    healthy.weights.write_text(found)
    first_step = json.dumps({"weights": {"v1": 90, "v2": 10}}) + "\n"
    with started_client("canary", *healthy.flags(), "--interval", "10m") as process:
        deadline = time.monotonic() + 60
        while healthy.weights.read_text() != first_step:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the first step's weights never came"
            time.sleep(0.05)
        assert healthy.served() != Counter({"v1": 40})  # the step's weights are in force
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)

    assert process.returncode == 130, out + err
    assert healthy.weights.read_text() == found
    assert err.strip().splitlines()[-1] == (
        "client: interrupted: weights restored to what was found at start,"
        f" {healthy.weights}: {' '.join(found.split())}"
    )


@pytest.mark.parametrize(
    ("steps", "said"),
    [
        ("50,25,100", "steps must increase"),
        ("0,50,100", "each step must be from 1 to 100"),
        ("10,50", "the last step must be 100"),
        ("10,150", "each step must be from 1 to 100"),
        ("ten", "comma-separated integers"),
    ],
)
def test_bad_steps_are_one_line_and_exit_2(steps: str, said: str, tmp_path: Path) -> None:
    result = run_client("canary", "--steps", steps, "--weights-file", str(tmp_path / "w.json"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0]
    assert not (tmp_path / "w.json").exists()


def test_a_weights_file_that_cannot_be_written_is_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "no-stack" / ".stack" / "weights.json"
    result = run_client("canary", "--weights-file", str(missing), "--agent", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"client: --weights-file {missing}: no directory {missing.parent} (is `uv run stack up`"
        " running with this data directory?)"
    ]


def test_an_unreachable_agent_is_exit_1_and_leaves_the_weights(tmp_path: Path) -> None:
    weights = tmp_path / "weights.json"
    weights.write_text('{"weights": {"v1": 70, "v2": 30}}')
    agent = f"http://127.0.0.1:{free_port()}"
    result = run_client("canary", "--weights-file", str(weights), "--agent", agent)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the APM test agent" in lines[0]
    assert weights.read_text() == '{"weights": {"v1": 70, "v2": 30}}'


@dataclass
class StandInKube:
    kubectl: Path
    directory: Path
    rendered: dict[str, Any]

    def calls(self) -> list[list[str]]:
        lines = (self.directory / "calls.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]

    def virtual_services(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads((self.directory / "state.json").read_text())
        return state["virtualservices"]


def stand_in_kube(tmp_path: Path, context: str) -> StandInKube:
    """A recording kubectl whose cluster holds the VirtualServices rendered from k8s/istio."""
    rendered = {
        f"{doc['metadata']['namespace']}/{doc['metadata']['name']}": doc
        for doc in yaml.safe_load_all((REPO_ROOT / "k8s/istio/virtualservices.yaml").read_text())
        if doc and doc.get("kind") == "VirtualService"
    }
    directory = tmp_path / "kube"
    directory.mkdir()
    (directory / "calls.jsonl").write_text("")
    state = {"context": context, "virtualservices": rendered}
    (directory / "state.json").write_text(json.dumps(state))
    kubectl = directory / "kubectl"
    kubectl.write_text(
        f'#!/bin/sh\nSTAND_IN_KUBE_DIR="{directory}" exec "{sys.executable}"'
        f' "{HERE / "stand_in_kubectl.py"}" "$@"\n'
    )
    kubectl.chmod(0o755)
    return StandInKube(kubectl, directory, json.loads(json.dumps(rendered)))


def split_weights(vs: dict[str, Any]) -> list[dict[str, int]]:
    return [
        {r["destination"]["subset"]: r["weight"] for r in rule["route"]}
        for rule in vs["spec"]["http"]
        if sorted(r["destination"].get("subset", "") for r in rule["route"]) == ["v1", "v2"]
    ]


def test_kube_patches_the_weighted_virtual_services_of_kind(healthy: Stage, tmp_path: Path) -> None:
    kube = stand_in_kube(tmp_path, "kind-speech-mesh")
    result = run_client(
        *("canary", "--kube", "--kubectl", str(kube.kubectl), *healthy.flags(), *STEPS),
        *("--format", "json"),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["final_weights"] == {"v1": 0, "v2": 100}
    after = kube.virtual_services()
    # The rendered text-to-speech and edge splits (70/30) now say 0/100; nothing else changed.
    for name in ("apps/text-to-speech", "apps/edge"):
        assert split_weights(kube.rendered[name]) == [{"v1": 70, "v2": 30}]
        assert split_weights(after[name]) == [{"v1": 0, "v2": 100}]
    assert after["apps/books"] == kube.rendered["apps/books"]
    for name in ("apps/text-to-speech", "apps/edge"):
        for rule in after[name]["spec"]["http"]:
            for route in rule["route"]:
                route.pop("weight", None)
        for rule in kube.rendered[name]["spec"]["http"]:
            for route in rule["route"]:
                route.pop("weight", None)
        assert after[name] == kube.rendered[name]
    calls = kube.calls()
    assert calls[0] == ["config", "current-context"]
    patches = [c for c in calls if "patch" in c]
    assert [c[c.index("virtualservice") + 1] for c in patches] == ["text-to-speech", "edge"] * 2
    assert all(c[:2] == ["--context", "kind-speech-mesh"] for c in calls[1:])
    first = json.loads(patches[0][patches[0].index("-p") + 1])
    rule = next(
        i
        for i, r in enumerate(kube.rendered["apps/text-to-speech"]["spec"]["http"])
        if len(r["route"]) == 2
    )
    assert first == [
        {"op": "test", "path": f"/spec/http/{rule}/route/0/destination/subset", "value": "v1"},
        {"op": "replace", "path": f"/spec/http/{rule}/route/0/weight", "value": 50},
        {"op": "test", "path": f"/spec/http/{rule}/route/1/destination/subset", "value": "v2"},
        {"op": "replace", "path": f"/spec/http/{rule}/route/1/weight", "value": 50},
    ]


def test_kube_refuses_any_context_but_kind(tmp_path: Path) -> None:
    kube = stand_in_kube(tmp_path, "prod-eu")
    result = run_client("canary", "--kube", "--kubectl", str(kube.kubectl))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "client: refusing kube context 'prod-eu': client canary --kube changes only the local"
        " kind cluster 'kind-speech-mesh' (kubectl config use-context kind-speech-mesh)"
    ]
    assert kube.calls() == [["config", "current-context"]]
    assert kube.virtual_services() == kube.rendered
