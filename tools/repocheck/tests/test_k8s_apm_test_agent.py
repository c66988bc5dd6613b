"""The in-cluster Datadog APM test agent (k8s/apm-test-agent, `tilt up -- --apm=test-agent`).

Its manifests pass every check the others do (tools/repocheck/tests/test_k8s_render.py,
`repocheck`); here: the image it runs is the version the local stack and the
tests run, built from a Dockerfile hadolint accepts, and the agent stays out
of the mesh.
"""

from __future__ import annotations

import re
import tomllib

from repocheck import dockerfiles
from repocheck.k8s import manifests, workloads
from testkit.k8s import repo_rendered

ROOT = manifests.REPO_ROOT
HERE = ROOT / "k8s/apm-test-agent"


def _locked_version() -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (package,) = [p for p in lock["package"] if p["name"] == "ddapm-test-agent"]
    return str(package["version"])


def test_the_image_pins_the_locked_test_agent_version() -> None:
    text = (HERE / "Dockerfile").read_text()
    pinned = re.search(r"^ARG DDAPM_TEST_AGENT_VERSION=(\S+)$", text, re.MULTILINE)
    assert pinned and pinned.group(1) == _locked_version()
    assert '"ddapm-test-agent==${DDAPM_TEST_AGENT_VERSION}"' in text


def test_the_dockerfile_passes_hadolint() -> None:
    assert dockerfiles.hadolint_problems(HERE / "Dockerfile") == []


def test_the_agent_runs_outside_the_mesh_with_its_version_tagged() -> None:
    objects = repo_rendered()[HERE]
    (namespace,) = [o for o in objects if o["kind"] == "Namespace"]
    assert namespace["metadata"]["labels"]["istio-injection"] == "disabled"
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 1  # one place holds every trace
    assert deployment["metadata"]["labels"]["tags.datadoghq.com/version"] == _locked_version()
    (container,) = workloads.containers(deployment)
    assert container["ports"] == [{"name": "http", "containerPort": 8126, "protocol": "TCP"}]


def test_it_is_not_deployed_by_default() -> None:
    top = {manifests.identity(o) for o in repo_rendered()[ROOT / "k8s"]}
    assert not top & {manifests.identity(o) for o in repo_rendered()[HERE]}
