"""Checkov, a policy scanner no one here wrote, on every deployable variant (issue 25).

Kubernetes: what ``kubectl apply -k`` deploys (``k8s/``, the books-postgres
overlay, the APM test agent) and what Tilt deploys with each of its flags (the
Tiltfile evaluated as in test_tilt_tiltfile.py). Dockerfiles: the one
every service image is built from, and the test agent's. A failed check fails
the test; an accepted finding is skipped where it stands (a ``checkov.io/skipN``
annotation, a ``# checkov:skip=`` comment) and must say why.

Offline: ``--skip-download`` and no API key, so nothing is fetched from the
Prisma/Bridgecrew platform (policies, guidelines, ID mappings);
``CKV_SKIP_PACKAGE_UPDATE_CHECK`` turns off the PyPI version check; and the
proxies point at a closed port on 127.0.0.1, so a download attempt would fail
at once instead of reaching the internet.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from repocheck import tilt
from repocheck.k8s import manifests
from repocheck.k8s.manifests import REPO_ROOT
from testkit.process import free_port

CHECKOV_NO_REASON = "No comment provided"  # what Checkov records for a skip without one

Objects = list[dict[str, Any]]


def _rendered(directory: str) -> Callable[[], Objects]:
    return lambda: manifests.render(REPO_ROOT / directory)


def _tilt(flags: dict[str, object]) -> Callable[[], Objects]:
    def deployed() -> Objects:
        result = tilt.evaluate_tiltfile(REPO_ROOT, flags=flags)
        assert result.failure is None, result.failure
        assert result.manifests, f"tilt up -- {flags}: nothing deployed"
        return list(result.manifests)

    return deployed


VARIANTS: dict[str, Callable[[], Objects]] = {
    "k8s": _rendered("k8s"),
    "k8s/overlays/books-postgres": _rendered("k8s/overlays/books-postgres"),
    "k8s/apm-test-agent": _rendered("k8s/apm-test-agent"),
    "tilt up": _tilt({}),
    "tilt up -- --no-datadog": _tilt({"no-datadog": True}),
    "tilt up -- --canary-weight=50": _tilt({"canary-weight": "50"}),
    "tilt up -- --apm=test-agent": _tilt({"apm": "test-agent"}),
    "tilt up -- --books-db=postgres": _tilt({"books-db": "postgres"}),
}

DOCKERFILES = ["services/Dockerfile", "k8s/apm-test-agent/Dockerfile"]


def checkov_binary() -> str:
    """The checkov of this environment (the dev group), beside the running Python."""
    beside = Path(sys.executable).parent / "checkov"
    found = str(beside) if beside.is_file() else shutil.which("checkov")
    assert found, "checkov is not installed (dev group of pyproject.toml: uv sync)"
    return found


def offline_env() -> dict[str, str]:
    """The environment without any platform credential, and no way out."""
    dropped = ("BC_", "PRISMA_", "CKV_", "CHECKOV_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    closed = f"http://127.0.0.1:{free_port()}"
    env |= {
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
        "HTTP_PROXY": closed,
        "HTTPS_PROXY": closed,
        "http_proxy": closed,
        "https_proxy": closed,
        "NO_PROXY": "",
        "no_proxy": "",
    }
    return env


def run_checkov(framework: str, files: list[Path], cwd: Path) -> dict[str, Any]:
    """Checkov's JSON report for ``files``; exit 0 (all passed) or 1 (findings) only."""
    command = [
        checkov_binary(),
        "--framework",
        framework,
        "--skip-download",
        "--compact",
        "--output",
        "json",
        *(a for f in files for a in ("--file", str(f))),
    ]
    done = subprocess.run(
        command,
        cwd=cwd,
        env=offline_env(),
        capture_output=True,
        text=True,
        # A safety net against a hang (a download waiting on the network), not a measure.
        timeout=600,
    )
    assert done.returncode in (0, 1), f"checkov exit {done.returncode}\n{done.stderr[-3000:]}"
    report = json.loads(done.stdout)
    assert isinstance(report, dict) and report.get("check_type") == framework, done.stdout[:500]
    return report


def findings(report: dict[str, Any]) -> list[str]:
    """Failed checks, and skips that give no reason, as one line each."""
    results = report["results"]
    lines = [
        f"{c['check_id']} ({c['check_name']}) FAILED for {c['resource']} in {c['file_path']}"
        for c in results.get("failed_checks", [])
    ]
    for check in results.get("skipped_checks", []):
        reason = str((check.get("check_result") or {}).get("suppress_comment") or "").strip()
        if not reason or reason == CHECKOV_NO_REASON:
            lines.append(f"{check['check_id']} skipped for {check['resource']} without a reason")
    return lines


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_checkov_passes_on_every_kubernetes_variant(tmp_path: Path, variant: str) -> None:
    objects = VARIANTS[variant]()
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    report = run_checkov("kubernetes", [rendered], tmp_path)
    summary = report["summary"]
    assert summary["parsing_errors"] == 0, summary
    # Every workload was scanned: Checkov read the file as Kubernetes.
    workloads = [o for o in objects if o.get("kind") == "Deployment"]
    assert workloads and summary["resource_count"] >= len(workloads), summary
    assert summary["passed"] > 0, summary
    problems = findings(report)
    assert not problems, f"{variant}:\n" + "\n".join(problems)


def test_checkov_passes_on_the_dockerfiles() -> None:
    report = run_checkov("dockerfile", [REPO_ROOT / f for f in DOCKERFILES], REPO_ROOT)
    summary = report["summary"]
    assert summary["parsing_errors"] == 0 and summary["resource_count"] == len(DOCKERFILES)
    assert summary["passed"] > 0, summary
    problems = findings(report)
    assert not problems, "\n".join(problems)


def test_a_finding_fails_and_a_skip_needs_a_reason(tmp_path: Path) -> None:
    """The test above can fail: an unhardened pod is reported, a bare skip too."""
    (books,) = [
        o
        for o in manifests.render(REPO_ROOT / "k8s")
        if o.get("kind") == "Deployment" and o["metadata"]["name"] == "books"
    ]
    books["spec"]["template"]["spec"].pop("automountServiceAccountToken")
    books["metadata"]["annotations"] = {"checkov.io/skip1": "CKV_K8S_43"}
    rendered = tmp_path / "books.yaml"
    rendered.write_text(yaml.safe_dump(books, sort_keys=False))
    problems = findings(run_checkov("kubernetes", [rendered], tmp_path))
    assert any(p.startswith("CKV_K8S_38 ") and "Deployment.apps.books" in p for p in problems), (
        problems
    )
    assert any("CKV_K8S_43 skipped for" in p and "without a reason" in p for p in problems), (
        problems
    )
