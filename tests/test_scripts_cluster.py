"""scripts/cluster-up and cluster-down: shellcheck, bash -n, what they rely on.

No cluster here: the scripts are checked statically, their pure helpers are
run by sourcing the script (which defines functions and runs nothing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = (ROOT / "scripts" / "cluster-up", ROOT / "scripts" / "cluster-down")


def _shellcheck() -> str:
    found = shutil.which("shellcheck")
    if found is None:
        pytest.fail("shellcheck is not installed (.ci/run installs the Debian package)")
    return found


def _bash(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck_passes(script: Path) -> None:
    completed = subprocess.run(
        [_shellcheck(), "-x", str(script.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bash_parses_it_and_it_is_strict_and_executable(script: Path) -> None:
    completed = subprocess.run(
        ["bash", "-n", str(script)], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert os.access(script, os.X_OK)


def test_shellcheck_catches_a_bug(tmp_path: Path) -> None:
    buggy = tmp_path / "buggy"
    buggy.write_text("#!/usr/bin/env bash\nset -euo pipefail\ndir=$1\nrm -rf $dir/*\n")
    completed = subprocess.run(
        [_shellcheck(), str(buggy)], capture_output=True, text=True, check=False
    )
    assert completed.returncode != 0
    assert "SC2086" in completed.stdout or "SC2115" in completed.stdout


def test_bash_n_catches_a_syntax_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.write_text("#!/usr/bin/env bash\nif true; then\n  echo no fi\n")
    assert (
        subprocess.run(["bash", "-n", str(broken)], capture_output=True, check=False).returncode
        != 0
    )


def test_every_path_the_bootstrap_reads_exists() -> None:
    script = (ROOT / "scripts/cluster-up").read_text()
    for variable, relative in (
        ("KIND_CONFIG", "k8s/kind/cluster.yaml"),
        ("ISTIO_OPERATOR_FILE", "k8s/istio/install/istio-operator.yaml"),
        ("METALLB_DIR", "k8s/metallb"),
        ("DATADOG_DIR", "k8s/datadog"),
    ):
        assert f'{variable}="$REPO_ROOT/{relative}"' in script, variable
        assert (ROOT / relative).exists(), relative
    assert '. "$REPO_ROOT/k8s/versions.env"' in script
    assert (ROOT / "k8s/versions.env").is_file()


def test_pinned_versions_are_exact() -> None:
    completed = _bash(
        '. k8s/versions.env; printf \'%s\\n\' "$ISTIO_VERSION" "$METALLB_VERSION"'
        ' "$DATADOG_OPERATOR_CHART_VERSION"'
    )
    assert completed.returncode == 0, completed.stderr
    istio, metallb, chart = completed.stdout.split()
    for version in (istio, metallb.removeprefix("v"), chart):
        assert version.count(".") == 2 and version.replace(".", "").isdigit(), version


def _kind_config() -> dict[str, object]:
    config = yaml.safe_load((ROOT / "k8s/kind/cluster.yaml").read_text())
    assert isinstance(config, dict)
    return config


def test_the_kind_config_parses_and_maps_the_gateway_ports() -> None:
    config = _kind_config()
    assert config["kind"] == "Cluster"
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert config["name"] == "speech-mesh"
    nodes = config["nodes"]
    assert isinstance(nodes, list)
    mappings = {
        m["hostPort"]: m["containerPort"]
        for node in nodes
        for m in node.get("extraPortMappings", [])
    }
    # The ingress gateway Service's nodePorts, from the IstioOperator file.
    operator = yaml.safe_load((ROOT / "k8s/istio/install/istio-operator.yaml").read_text())
    (gateway,) = operator["spec"]["components"]["ingressGateways"]
    node_ports = {
        p["port"]: p["nodePort"] for p in gateway["k8s"]["service"]["ports"] if "nodePort" in p
    }
    assert mappings[80] == node_ports[80]
    assert mappings[443] == node_ports[443]


def test_cluster_name_is_read_the_way_the_scripts_read_it() -> None:
    completed = _bash("awk '/^name:/ { print $2; exit }' k8s/kind/cluster.yaml")
    assert completed.stdout.strip() == _kind_config()["name"]


@pytest.mark.parametrize(
    ("subnet", "expected"),
    [
        ("172.18.0.0/16", "172.18.255.205-172.18.255.254"),
        ("192.168.49.0/24", "192.168.49.205-192.168.49.254"),
        ("10.89.0.0/20", "10.89.15.205-10.89.15.254"),
    ],
)
def test_the_metallb_pool_is_at_the_high_end_of_the_kind_subnet(subnet: str, expected: str) -> None:
    completed = _bash(f"source scripts/cluster-up && pool_range {subnet}")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == expected


def test_a_kind_subnet_too_small_for_a_pool_is_refused() -> None:
    completed = _bash("source scripts/cluster-up && pool_range 172.18.0.0/26")
    assert completed.returncode != 0
    assert "smaller than a /24" in completed.stderr


def test_the_pool_placeholder_in_k8s_metallb_is_what_cluster_up_fills() -> None:
    completed = _bash(
        "source scripts/cluster-up && kubectl kustomize k8s/metallb"
        ' | sed "s/\\${METALLB_POOL_RANGE}/$(pool_range 172.18.0.0/16)/g"'
    )
    assert completed.returncode == 0, completed.stderr
    docs = [d for d in yaml.safe_load_all(completed.stdout) if d]
    (pool,) = [d for d in docs if d["kind"] == "IPAddressPool"]
    assert pool["spec"]["addresses"] == ["172.18.255.205-172.18.255.254"]
    assert "METALLB_POOL_RANGE" not in completed.stdout


def test_version_comparison() -> None:
    completed = _bash(
        "source scripts/cluster-up && version_at_least 1.31.2 1.31.0"
        " && ! version_at_least 1.9.9 1.31.0"
        " && [ \"$(echo 'kind v0.27.0 go1.23 linux/amd64' | semver)\" = 0.27.0 ] && echo ok"
    )
    assert completed.stdout.strip() == "ok", completed.stderr


def test_datadog_secret_and_agent_match_what_cluster_up_creates() -> None:
    script = (ROOT / "scripts/cluster-up").read_text()
    agents = [
        d
        for d in yaml.safe_load_all((ROOT / "k8s/datadog/datadog-agent.yaml").read_text())
        if d and d.get("kind") == "DatadogAgent"
    ]
    assert len(agents) == 1
    agent = agents[0]
    assert 'DATADOG_NAMESPACE="datadog"' in script
    assert agent["metadata"]["namespace"] == "datadog"
    secret = agent["spec"]["global"]["credentials"]["apiSecret"]
    assert secret == {"secretName": "datadog-secret", "keyName": "api-key"}
    assert "create secret generic datadog-secret" in script
    assert '--from-file=api-key="$key_dir/api-key"' in script
