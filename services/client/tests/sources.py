"""Both sources of `client compare`, for the tests: a real ddapm-test-agent fed real
ddtrace spans by ``emit_traces.py``, and ``fake_datadog.py``; and the command itself."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from client_runs import HERE, ScriptServer, run_client
from testkit.process import REPO_ROOT
from testkit.testagent import ApmTestAgent
from traffic import Batch, dumps

EMITTER = HERE / "emit_traces.py"
FAKE = HERE / "fake_datadog.py"
KEYS = {"DD_API_KEY": "test-api-key", "DD_APP_KEY": "test-app-key"}


def plan_t0() -> float:
    """Where a plan starts: a minute ago, well inside the default --since 30m."""
    return time.time() - 60.0


def emit(
    agent: ApmTestAgent,
    plan: list[Batch],
    under_gateway: tuple[str, ...] = (),
    t0: float | None = None,
    probe_count: int = 0,
) -> None:
    """One emitter process per version, concurrently; then wait for every entry span."""
    start = plan_t0() if t0 is None else t0
    versions = sorted({batch.version for batch in plan})
    before = count_entries(agent.spans())
    processes = []
    for version in versions:
        env = {
            **os.environ,
            **agent.tracer_env(),
            "DD_SERVICE": "text-to-speech",
            "DD_VERSION": version,
            "DD_ENV": "test",
        }
        flags = ["--under-gateway"] if version in under_gateway else []
        flags.append(f"--probes={probe_count}")
        processes.append(
            subprocess.Popen(
                [sys.executable, str(EMITTER), "--plan", dumps(plan), f"--t0={start}", *flags],
                env=env,
                cwd=REPO_ROOT,
            )
        )
    for process in processes:
        assert process.wait(timeout=60) == 0
    # every request, every earlier attempt of a retried one, the probes of each version
    requests = sum(batch.count + batch.retried for batch in plan)
    expected = before + requests + len(versions) * (1 + probe_count)
    agent.wait_for_spans(lambda spans: count_entries(spans) >= expected)


def count_entries(spans: list[Any]) -> int:
    return sum(1 for s in spans if s.get("name") == "litestar.request" and "version" in s["meta"])


def run_compare(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_client("compare", *args, env=env)


class FakeDatadog(ScriptServer):
    def __init__(self, plan: list[Batch], *flags: str, t0: float | None = None) -> None:
        super().__init__(
            FAKE,
            "/fake/requests",
            f"--plan={dumps(plan)}",
            f"--t0={plan_t0() if t0 is None else t0}",
            f"--api-key={KEYS['DD_API_KEY']}",
            f"--app-key={KEYS['DD_APP_KEY']}",
            *flags,
        )

    def answers(self) -> list[dict[str, Any]]:
        answers: list[dict[str, Any]] = self.get_json("/fake/requests")
        return answers

    def compare(self, *args: str, keys: dict[str, str] = KEYS) -> subprocess.CompletedProcess[str]:
        return run_compare(
            "--datadog", "--since", "30m", *args, env={**keys, "DATADOG_API_URL": self.url}
        )


def by_resource(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["resource"]: item for item in report["resources"]}


def shape(report: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on the source: verdict, statuses, counts, only-in."""
    return {
        "verdict": report["verdict"],
        "family_size": report["correction"]["family_size"],
        "only_in": report["only_in"],
        "mix_significant": (report["mix_test"]["p_adjusted"] or 1.0) < 0.01,
        "resources": {
            name: (
                item["status"],
                item["worse_in"],
                *(
                    item[role][count]
                    for role in ("baseline", "canary")
                    for count in ("requests", "rejected_4xx", "failed_5xx")
                ),
            )
            for name, item in by_resource(report).items()
        },
    }
