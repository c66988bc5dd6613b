"""scripts/cluster-up and cluster-down: shellcheck, bash -n, what they rely on.

No cluster here: the scripts are checked statically, their pure helpers are
run by sourcing the script (which defines functions and runs nothing).
"""

from __future__ import annotations

import os
import re
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
    mappings = [m for node in nodes for m in node.get("extraPortMappings", [])]
    # Loopback only: without listenAddress kind binds every interface (the LAN).
    assert all(m.get("listenAddress") == "127.0.0.1" for m in mappings), mappings
    # The ingress gateway Service's nodePorts, from the IstioOperator file.
    operator = yaml.safe_load((ROOT / "k8s/istio/install/istio-operator.yaml").read_text())
    (gateway,) = operator["spec"]["components"]["ingressGateways"]
    node_ports = {
        p["port"]: p["nodePort"] for p in gateway["k8s"]["service"]["ports"] if "nodePort" in p
    }
    # Only ports a Gateway server listens on are opened (no 443 without a TLS server).
    served = {
        server["port"]["number"]
        for doc in yaml.safe_load_all((ROOT / "k8s/istio/gateway.yaml").read_text())
        if doc and doc.get("kind") == "Gateway"
        for server in doc["spec"]["servers"]
    }
    assert {m["hostPort"]: m["containerPort"] for m in mappings} == {
        port: node_ports[port] for port in served
    }
    assert set(node_ports) == served


def test_the_kind_node_is_pinned_to_a_kubernetes_with_native_sidecars() -> None:
    """Istio 1.30 injects native sidecars only on kubelets >= 1.33 (k8s/kind/cluster.yaml)."""
    (node,) = _kind_config()["nodes"]
    image = node["image"]
    name, _, digest = image.partition("@sha256:")
    assert len(digest) == 64 and name.startswith("kindest/node:v"), image
    version = tuple(int(part) for part in name.removeprefix("kindest/node:v").split("."))
    assert version >= (1, 33, 0), image
    # kind builds node images per release: the one pinned is kind 0.29.0's.
    script = (ROOT / "scripts/cluster-up").read_text()
    assert 'MIN_KIND="0.29.0"' in script


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


# --------------------------------------------------------------------------- stand-in tools
# The scripts run for real against stand-in docker, kind, kubectl, istioctl and
# helm placed first on PATH. Every stand-in appends its command line (and, for
# `kubectl apply -f -`, what it read) to a log, and answers like the real tool.

STAND_IN = r"""#!/usr/bin/env bash
name="$(basename "$0")"
printf '%s\n' "$name $*" >>"$STAND_IN_LOG"
case "$name $*" in
  "docker info") ;;
  "docker version"*) echo "${STAND_IN_DOCKER_VERSION:-27.5.1}" ;;
  "docker network inspect kind"*)
    printf '%b' "${STAND_IN_KIND_SUBNETS-172.18.0.0/16\nfc00:f853:ccd:e793::/64\n}" ;;
  "kind version") echo "kind v${STAND_IN_KIND_VERSION:-0.29.0} go1.24.2 linux/amd64" ;;
  "kind get clusters")
    [ -f "$STAND_IN_CLUSTERS" ] || { echo "No kind clusters found." >&2; exit 0; }
    cat "$STAND_IN_CLUSTERS"
    # Many more names after the first: a reader that stops early gets SIGPIPE.
    for i in $(seq "${STAND_IN_EXTRA_CLUSTERS:-0}"); do echo "other-$i"; done ;;
  "kubectl version --client") echo "Client Version: v1.33.1" ;;
  "kubectl kustomize"*) sed "/^#/d" "$STAND_IN_REPO/k8s/metallb/ipaddresspool.yaml" ;;
  "kubectl "*" apply -f -")
    sed 's/^/  stdin: /' >>"$STAND_IN_LOG" ;;
  "kubectl "*"-o jsonpath="*) echo "172.18.255.205" ;;
  "kubectl "*"--dry-run=client -o yaml"*) echo "kind: Stand-in" ;;
  "kubectl "*" get secret "*) [ -n "${STAND_IN_SECRET_EXISTS:-}" ] || exit 1 ;;
  "istioctl version --remote=false")
    [ -z "${STAND_IN_ISTIOCTL_FAILS:-}" ] || exit 1
    echo "client version: ${STAND_IN_ISTIOCTL_VERSION:-1.30.4}" ;;
  "helm version --short") echo "v3.16.2+g13654a5" ;;
esac
exit 0
"""
TOOLS = ("docker", "kind", "kubectl", "istioctl", "helm")


class StandIns:
    def __init__(self, root: Path) -> None:
        self.bin = root / "bin"
        self.bin.mkdir()
        self.log = root / "calls.log"
        self.clusters = root / "clusters"
        for tool in TOOLS:
            path = self.bin / tool
            path.write_text(STAND_IN)
            path.chmod(0o755)

    def run(
        self, script: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        environ = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "HOME": str(self.bin.parent),
            "STAND_IN_LOG": str(self.log),
            "STAND_IN_CLUSTERS": str(self.clusters),
            "STAND_IN_REPO": str(ROOT),
            **(env or {}),
        }
        return subprocess.run(
            [str(ROOT / "scripts" / script), *args],
            env=environ,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    def calls(self) -> list[str]:
        if not self.log.exists():
            return []
        return [line for line in self.log.read_text().splitlines() if line.strip()]

    def commands(self) -> list[str]:
        return [line for line in self.calls() if not line.startswith("  stdin: ")]


@pytest.fixture
def tools(tmp_path: Path) -> StandIns:
    return StandIns(tmp_path)


@pytest.mark.parametrize("script", ["cluster-up", "cluster-down"])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_the_usage_and_calls_nothing(tools: StandIns, script: str, flag: str) -> None:
    completed = tools.run(script, flag, env={"DD_API_KEY": "secret"})
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"Usage: scripts/{script}")
    assert tools.calls() == []


def test_cluster_up_help_names_its_environment_and_versions(tools: StandIns) -> None:
    usage = tools.run("cluster-up", "--help").stdout
    for name in ("DD_API_KEY", "DD_APP_KEY", "GOOGLE_APPLICATION_CREDENTIALS"):
        assert name in usage
    script = (ROOT / "scripts/cluster-up").read_text()
    for variable in ("MIN_DOCKER", "MIN_KIND", "MIN_KUBECTL", "MIN_HELM"):
        version = script.split(f'{variable}="', 1)[1].split('"', 1)[0]
        assert f">= {version}" in usage, variable
    versions = _bash('. k8s/versions.env; echo "$ISTIO_VERSION"').stdout.strip()
    assert f"istioctl {versions}" in usage


@pytest.mark.parametrize("script", ["cluster-up", "cluster-down"])
@pytest.mark.parametrize("args", [["--bogus"], ["speech-mesh"], ["-x"], ["", "--help"]])
def test_an_unknown_argument_is_refused_with_one_line_and_no_call(
    tools: StandIns, script: str, args: list[str]
) -> None:
    tools.clusters.write_text("speech-mesh\n")
    completed = tools.run(script, *args)
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert completed.stdout == ""
    assert len(completed.stderr.splitlines()) == 1 and script in completed.stderr
    assert tools.calls() == []


def test_cluster_up_creates_the_cluster_and_installs_the_rest(tools: StandIns) -> None:
    completed = tools.run("cluster-up")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    commands = tools.commands()
    config = ROOT / "k8s/kind/cluster.yaml"
    assert f"kind create cluster --config {config} --name speech-mesh --wait 180s" in commands
    operator = ROOT / "k8s/istio/install/istio-operator.yaml"
    assert f"istioctl install --context kind-speech-mesh -y -f {operator}" in commands
    # The MetalLB pool, filled from the kind network's IPv4 subnet (the IPv6 one is skipped).
    assert "  stdin:     - 172.18.255.205-172.18.255.254" in tools.calls()
    assert not [c for c in commands if c.startswith("helm")]  # no DD_API_KEY: no Datadog
    assert "export GATEWAY_IP=172.18.255.205" in completed.stdout


def test_cluster_up_keeps_an_existing_cluster_even_in_a_long_list(tools: StandIns) -> None:
    # `kind get clusters | grep -qx NAME` under pipefail: grep stops at the first
    # line, kind gets SIGPIPE writing the rest, and the pipeline reads as false.
    tools.clusters.write_text("speech-mesh\n")
    completed = tools.run("cluster-up", env={"STAND_IN_EXTRA_CLUSTERS": "20000"})
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "already exists: keeping it" in completed.stdout
    assert not [c for c in tools.commands() if c.startswith("kind create")]


def test_cluster_down_deletes_an_existing_cluster_even_in_a_long_list(tools: StandIns) -> None:
    tools.clusters.write_text("speech-mesh\n")
    completed = tools.run("cluster-down", env={"STAND_IN_EXTRA_CLUSTERS": "20000"})
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert tools.commands() == ["kind get clusters", "kind delete cluster --name speech-mesh"]
    # It names the cluster before deleting it.
    assert "deleting kind cluster 'speech-mesh'" in completed.stdout


def test_cluster_down_without_the_cluster_deletes_nothing(tools: StandIns) -> None:
    tools.clusters.write_text("another\n")
    completed = tools.run("cluster-down")
    assert completed.returncode == 0, completed.stderr
    assert tools.commands() == ["kind get clusters"]
    assert "nothing to do" in completed.stdout


def test_a_kind_network_without_ipv4_is_named(tools: StandIns) -> None:
    completed = tools.run("cluster-up", env={"STAND_IN_KIND_SUBNETS": "fc00:f853:ccd:e793::/64\n"})
    assert completed.returncode == 1
    assert "cluster-up: the Docker network 'kind' has no IPv4 subnet" in completed.stderr
    assert not [c for c in tools.commands() if "apply -f -" in c]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STAND_IN_ISTIOCTL_FAILS": "1"}, "could not read the istioctl version"),
        ({"STAND_IN_ISTIOCTL_VERSION": "1.30.3"}, "istioctl 1.30.3 is too old: need 1.30.4"),
        ({"STAND_IN_ISTIOCTL_VERSION": "1.31.0"}, "would install Istio 1.31"),
        ({"STAND_IN_KIND_VERSION": "0.27.0"}, "kind 0.27.0 is too old: need 0.29.0"),
    ],
)
def test_wrong_tool_versions_stop_before_any_change(
    tools: StandIns, env: dict[str, str], message: str
) -> None:
    completed = tools.run("cluster-up", env=env)
    assert completed.returncode == 1
    assert message in completed.stderr
    assert not [c for c in tools.commands() if c.startswith(("kind create", "istioctl install"))]


def test_cluster_up_with_datadog_keeps_the_keys_off_command_lines(tools: StandIns) -> None:
    completed = tools.run(
        "cluster-up", env={"DD_API_KEY": "api-secret-1", "DD_APP_KEY": "app-secret-2"}
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    commands = tools.commands()
    assert any(c.startswith("helm upgrade --install datadog-operator") for c in commands)
    assert any("apply -k" in c and c.endswith("k8s/datadog") for c in commands)
    log = tools.log.read_text()
    assert "api-secret-1" not in log and "app-secret-2" not in log


def test_the_pool_example_in_k8s_metallb_is_what_cluster_up_computes() -> None:
    comment = (ROOT / "k8s/metallb/ipaddresspool.yaml").read_text()
    example = re.search(r"subnet (\S+) it is (\S+?)\.\n", comment)
    assert example is not None, "k8s/metallb/ipaddresspool.yaml: no worked example"
    completed = _bash(f"source scripts/cluster-up && pool_range {example[1]}")
    assert completed.stdout.strip() == example[2]
    substitution = 'sed "s/\\${METALLB_POOL_RANGE}/$POOL_RANGE/g"'
    assert substitution in comment
    assert substitution in (ROOT / "scripts/cluster-up").read_text()


def test_with_postgres_is_the_only_argument_and_installs_the_pinned_operator() -> None:
    completed = _bash(
        "source scripts/cluster-up && parse_args --with-postgres && echo $WITH_POSTGRES"
        " && cnpg_manifest_url $CNPG_VERSION"
    )
    lines = completed.stdout.split()
    assert lines[0] == "1", completed.stderr
    version = next(
        line.split("=", 1)[1]
        for line in (ROOT / "k8s/versions.env").read_text().splitlines()
        if line.startswith("CNPG_VERSION=")
    )
    minor = version.rsplit(".", 1)[0]
    assert lines[1] == (
        "https://raw.githubusercontent.com/cloudnative-pg/cloudnative-pg/"
        f"release-{minor}/releases/cnpg-{version}.yaml"
    )
    refused = _bash("source scripts/cluster-up && parse_args --with-mysql")
    assert refused.returncode == 2
    assert "unknown argument: --with-mysql" in refused.stderr


def test_books_db_secret_matches_the_cluster_and_the_deployment() -> None:
    script = (ROOT / "scripts/cluster-up").read_text()
    component = ROOT / "k8s/components/books-postgres"
    (cluster,) = yaml.safe_load_all((component / "books-db.yaml").read_text())
    (deployment,) = yaml.safe_load_all((component / "books-deployment.yaml").read_text())
    assert 'BOOKS_DB_SECRET="books-db-credentials"' in script
    assert "--type=kubernetes.io/basic-auth" in script
    assert cluster["spec"]["bootstrap"]["initdb"]["secret"]["name"] == "books-db-credentials"
    assert cluster["spec"]["bootstrap"]["initdb"]["owner"] == "books"
    assert "printf 'books' >\"$secret_dir/username\"" in script
    pod = deployment["spec"]["template"]["spec"]
    env = {v["name"]: v for v in pod["containers"][0]["env"]}
    # The password reaches books as a file from that Secret (issue 25), not as env.
    (volume,) = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == "books-db-credentials"
    assert "BOOKS_DATABASE_PASSWORD_FILE" in env and "BOOKS_DATABASE_PASSWORD" not in env
    assert "postgresql://books@" in env["BOOKS_DATABASE_URL"]["value"]


def test_the_password_recipe_gives_32_random_characters() -> None:
    recipe = next(
        line.strip().split(" >")[0]
        for line in (ROOT / "scripts/cluster-up").read_text().splitlines()
        if "/dev/urandom" in line
    )
    first, second = (_bash(recipe).stdout for _ in range(2))
    assert len(first) == 32 and first.isalnum() and first != second


@pytest.mark.parametrize("exists", [False, True])
def test_cluster_up_with_postgres_installs_the_operator_and_makes_the_secret_once(
    tools: StandIns, exists: bool
) -> None:
    env = {"STAND_IN_SECRET_EXISTS": "1"} if exists else {}
    completed = tools.run("cluster-up", "--with-postgres", env=env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    commands = tools.commands()
    applied = [c for c in commands if "apply --server-side --force-conflicts -f https://" in c]
    assert len(applied) == 1 and applied[0].endswith(".yaml") and "/cnpg-" in applied[0]
    assert any("rollout status deployment/cnpg-controller-manager" in c for c in commands)
    created = [c for c in commands if "create secret generic books-db-credentials" in c]
    if exists:
        assert created == [] and "keeping it" in completed.stdout
    else:
        (command,) = created
        assert "--type=kubernetes.io/basic-auth" in command
        assert "--from-file=password=" in command and "--from-file=username=" in command


def test_cluster_up_without_postgres_installs_no_operator(tools: StandIns) -> None:
    assert tools.run("cluster-up").returncode == 0
    assert not [c for c in tools.commands() if "cnpg" in c or "books-db-credentials" in c]
