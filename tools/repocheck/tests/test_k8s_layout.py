"""What the issue asks of k8s/, beyond schemas and cross-references.

Routing (canary split, pins, retries, timeouts), resilience settings,
security, the Istio/kind/MetalLB/Datadog wiring between files that no schema
relates, pinned versions, and no secret values in the repository.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from repocheck.k8s import manifests
from repocheck.k8s.inventory import ISTIO_OPERATOR_FILE, KIND_CONFIG_FILE, SECRETS_EXAMPLE_FILE
from repocheck.k8s.schemas import CrdSchemas, validate
from testkit.k8s import repo_rendered

ROOT = manifests.REPO_ROOT
Obj = dict[str, Any]


def _all() -> list[Obj]:
    return manifests.unique(o for objs in repo_rendered().values() for o in objs)


def _one(kind: str, name: str) -> Obj:
    found = [o for o in _all() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def _load(relative: str) -> list[Obj]:
    return manifests.load_file(ROOT / relative)


def _versions() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (ROOT / "k8s/versions.env").read_text().splitlines())
    return {
        k.strip(): v.strip()
        for k, v in (p for p in pairs if len(p) == 2 and not p[0].startswith("#"))
    }


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version)[:3])


# --------------------------------------------------------------------------- apps


def test_apps_namespace_has_sidecar_injection() -> None:
    assert _one("Namespace", "apps")["metadata"]["labels"]["istio-injection"] == "enabled"


def test_books_is_a_single_writer() -> None:
    books = _one("Deployment", "books")
    assert books["spec"]["replicas"] == 1
    assert books["spec"]["strategy"]["type"] == "Recreate"
    assert "cannot scale out" in (ROOT / "k8s/apps/books.yaml").read_text()


def test_books_on_postgres_is_three_stateless_replicas() -> None:
    overlay = repo_rendered()[ROOT / "k8s/overlays/books-postgres"]
    (books,) = [
        o for o in overlay if o["kind"] == "Deployment" and o["metadata"]["name"] == "books"
    ]
    spec = books["spec"]
    assert spec["replicas"] == 3 and spec["strategy"]["type"] == "RollingUpdate"
    pod = spec["template"]["spec"]
    # No database volume: only /tmp and the password, a Secret mounted as a file.
    assert [v["name"] for v in pod["volumes"]] == ["db-credentials", "tmp"]
    assert pod["volumes"][0]["secret"]["secretName"] == "books-db-credentials"
    assert not [
        o
        for o in overlay
        if o["kind"] == "PersistentVolumeClaim" and "books" in o["metadata"]["name"]
    ]
    env = {v["name"]: v for v in pod["containers"][0]["env"]}
    assert "BOOKS_DB_PATH" not in env
    assert env["BOOKS_DATABASE_URL"]["value"].startswith("postgresql://books@books-db-rw.apps.")
    assert ":" not in env["BOOKS_DATABASE_URL"]["value"].split("//")[1].split("@")[0]  # no password
    # The password as a file from the Secret, never an environment variable.
    assert "BOOKS_DATABASE_PASSWORD" not in env
    secret = pod["volumes"][0]["secret"]
    assert secret["items"] == [{"key": "password", "path": "password"}]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "db-credentials"]
    assert mount["readOnly"] is True
    assert env["BOOKS_DATABASE_PASSWORD_FILE"]["value"] == mount["mountPath"] + "/password"
    ref = {"name": secret["secretName"]}
    (cluster,) = [o for o in overlay if o["kind"] == "Cluster"]
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert cluster["spec"]["bootstrap"]["initdb"]["secret"]["name"] == ref["name"]
    assert cluster["spec"]["inheritedMetadata"]["labels"]["sidecar.istio.io/inject"] == "false"
    # No acknowledged write lost on failover: one standby of two confirms each commit.
    assert cluster["spec"]["instances"] == 3
    assert cluster["spec"]["postgresql"]["synchronous"] == {
        "method": "any",
        "number": 1,
        "dataDurability": "required",
    }
    assert _numbers(_versions()["CNPG_VERSION"]) >= (1, 28, 0)
    assert [o for o in overlay if o["kind"] == "PodDisruptionBudget"]


def test_text_to_speech_versions_share_one_service_and_volume() -> None:
    service = _one("Service", "text-to-speech")
    assert service["spec"]["selector"] == {"app": "text-to-speech"}
    for version in ("v1", "v2"):
        pod = _one("Deployment", f"text-to-speech-{version}")["spec"]["template"]
        assert pod["metadata"]["labels"]["version"] == version
        claims = [
            v["persistentVolumeClaim"]["claimName"]
            for v in pod["spec"]["volumes"]
            if "persistentVolumeClaim" in v
        ]
        assert claims == ["text-to-speech-audio"]
        affinity = pod["spec"]["affinity"]["podAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]
        assert affinity[0]["labelSelector"]["matchLabels"] == {"app": "text-to-speech"}
        assert affinity[0]["topologyKey"] == "kubernetes.io/hostname"


def test_tts_backend_uses_native_grpc_probes() -> None:
    container = _one("Deployment", "tts-backend")["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["grpc"]["port"] == 50051


def test_client_polls_the_mesh_service_and_the_gateway() -> None:
    containers = _one("Deployment", "client")["spec"]["template"]["spec"]["containers"]
    urls = {v["value"] for c in containers for v in c["env"] if v["name"] == "GATEWAY_URL"}
    assert urls == {
        "http://text-to-speech.apps.svc.cluster.local:80",
        "http://istio-ingressgateway.istio-system.svc.cluster.local:80",
    }
    assert all(c["args"][0] == "poll" for c in containers)


# --------------------------------------------------------------------------- Istio


def _http(name: str) -> list[Obj]:
    return _one("VirtualService", name)["spec"]["http"]  # type: ignore[no-any-return]


def test_services_are_bound_to_the_gateway_and_the_mesh() -> None:
    for name in ("books", "text-to-speech"):
        assert set(_one("VirtualService", name)["spec"]["gateways"]) == {
            "apps/speech-gateway",
            "mesh",
        }
    gateway = _one("Gateway", "speech-gateway")
    assert gateway["spec"]["selector"] == {"istio": "ingressgateway"}
    assert gateway["spec"]["servers"][0]["port"] == {
        "number": 80,
        "name": "http",
        "protocol": "HTTP",
    }


def test_text_to_speech_pins_then_splits_70_30() -> None:
    pin_v2, pin_v1, split = _http("text-to-speech")
    for rule, version in ((pin_v2, "v2"), (pin_v1, "v1")):
        assert all(m["headers"] == {"x-canary": {"exact": version}} for m in rule["match"])
        assert [r["destination"]["subset"] for r in rule["route"]] == [version]
    paths = [m["uri"] for m in split["match"]]
    assert paths == [{"exact": "/"}, {"prefix": "/speech"}, {"prefix": "/audio"}]
    assert {r["destination"]["subset"]: r["weight"] for r in split["route"]} == {"v1": 70, "v2": 30}


def test_every_route_has_retries_and_a_timeout() -> None:
    for name in ("books", "text-to-speech", "edge"):
        for rule in _http(name):
            assert {"attempts", "retryOn"} <= set(rule["retries"]), name
            assert rule["timeout"], name


# Envoy conditions that cannot replay a request the app may have received
# (`reset`, `5xx` and `gateway-error` retry after a reset of a request already sent).
NEVER_REPLAYING = {"connect-failure", "refused-stream", "reset-before-request"}


def test_books_routes_never_replay_a_request_that_was_sent() -> None:
    routes = [
        rule
        for name in ("books", "edge")
        for rule in _http(name)
        if any(r["destination"]["host"].startswith("books.") for r in rule["route"])
    ]
    assert len(routes) == 2
    for rule in routes:
        assert set(rule["retries"]["retryOn"].split(",")) <= NEVER_REPLAYING, rule["retries"]
        assert "perTryTimeout" not in rule["retries"]


def test_destination_rules_limit_and_eject() -> None:
    for name in ("books", "text-to-speech", "tts-backend"):
        policy = _one("DestinationRule", name)["spec"]["trafficPolicy"]
        assert policy["connectionPool"]["tcp"]["maxConnections"] > 0
        outlier = policy["outlierDetection"]
        assert set(outlier) >= {"interval", "baseEjectionTime", "maxEjectionPercent"}
        # Only connection failures eject: the apps' own 503s (+ Retry-After) never do.
        assert outlier["splitExternalLocalOriginErrors"] is True
        assert outlier["consecutiveLocalOriginFailures"] > 0
        assert outlier["consecutive5xxErrors"] == 0  # unset would be Envoy's 5
        assert not outlier.get("consecutiveGatewayErrors")
    subsets = _one("DestinationRule", "text-to-speech")["spec"]["subsets"]
    assert {s["name"]: s["labels"] for s in subsets} == {
        "v1": {"version": "v1"},
        "v2": {"version": "v2"},
    }


def test_mtls_strict_and_deny_by_default() -> None:
    assert _one("PeerAuthentication", "default")["spec"]["mtls"]["mode"] == "STRICT"
    assert _one("AuthorizationPolicy", "deny-by-default")["spec"] == {}


def test_local_gateway_reads_the_istio_files() -> None:
    from devstack.gateway.istio import load_gateway_config

    config = load_gateway_config(ROOT / "k8s/istio")
    assert config.virtual_services == ["apps/books", "apps/text-to-speech", "apps/edge"]


def test_istio_operator_minimal_with_a_datadog_tracing_provider() -> None:
    (operator,) = _load(ISTIO_OPERATOR_FILE)
    assert operator["kind"] == "IstioOperator" and operator["spec"]["profile"] == "minimal"
    (gateway,) = operator["spec"]["components"]["ingressGateways"]
    assert gateway["label"]["istio"] == "ingressgateway"
    assert gateway["k8s"]["service"]["type"] == "LoadBalancer"
    providers = {p["name"]: p for p in operator["spec"]["meshConfig"]["extensionProviders"]}
    agent = _one("DatadogAgent", "datadog")
    local_service = (
        f"{agent['metadata']['name']}-agent.{agent['metadata']['namespace']}.svc.cluster.local"
    )
    assert providers["datadog"]["datadog"] == {
        "service": local_service,
        "port": agent["spec"]["features"]["apm"]["hostPortConfig"]["hostPort"],
    }
    telemetry = _one("Telemetry", "mesh-default")
    (tracing,) = telemetry["spec"]["tracing"]
    assert [p["name"] for p in tracing["providers"]] == ["datadog"]
    assert 0 < tracing["randomSamplingPercentage"] <= 100


def test_versions_are_pinned_and_current() -> None:
    versions = _versions()
    assert _numbers(versions["ISTIO_VERSION"]) >= (1, 30, 0)
    assert _numbers(versions["METALLB_VERSION"]) >= (0, 15, 0)
    assert versions["DATADOG_OPERATOR_CHART_VERSION"]
    assert f"istioctl {versions['ISTIO_VERSION']}" in (ROOT / ISTIO_OPERATOR_FILE).read_text()


def test_kind_maps_host_ports_to_the_gateway_node_ports() -> None:
    (cluster,) = _load(KIND_CONFIG_FILE)
    mappings = {
        m["hostPort"]: m["containerPort"]
        for n in cluster["nodes"]
        for m in n.get("extraPortMappings", [])
    }
    (operator,) = _load(ISTIO_OPERATOR_FILE)
    ports = operator["spec"]["components"]["ingressGateways"][0]["k8s"]["service"]["ports"]
    node_ports = {p["port"]: p["nodePort"] for p in ports if "nodePort" in p}
    assert mappings == {80: node_ports[80]}


# --------------------------------------------------------------------------- MetalLB


def test_metallb_pool_is_a_placeholder_filled_at_bootstrap() -> None:
    objects = repo_rendered()[ROOT / "k8s/metallb"]
    pool = next(o for o in objects if o["kind"] == "IPAddressPool")
    assert pool["metadata"]["namespace"] == "metallb-system"
    assert pool["spec"]["addresses"] == ["${METALLB_POOL_RANGE}"]
    advert = next(o for o in objects if o["kind"] == "L2Advertisement")
    assert advert["spec"]["ipAddressPools"] == [pool["metadata"]["name"]]


def test_metallb_pool_with_a_range_filled_in_is_valid() -> None:
    text = yaml.safe_dump_all(repo_rendered()[ROOT / "k8s/metallb"])
    filled = manifests.parse_documents(
        text.replace("${METALLB_POOL_RANGE}", "172.18.255.200-172.18.255.250"), source="filled"
    )
    assert validate(filled, CrdSchemas()) == []


# --------------------------------------------------------------------------- Datadog


def test_datadog_agent_features() -> None:
    spec = _one("DatadogAgent", "datadog")["spec"]
    features = spec["features"]
    assert features["apm"] == {
        "enabled": True,
        "hostPortConfig": {"enabled": True, "hostPort": 8126},
    }
    assert features["logCollection"] == {"enabled": True, "containerCollectAll": True}
    for feature in (
        "npm",
        "liveProcessCollection",
        "clusterChecks",
        "admissionController",
        "orchestratorExplorer",
    ):
        assert features[feature]["enabled"] is True, feature
    assert features["eventCollection"]["collectKubernetesEvents"] is True
    assert spec["global"]["clusterName"] == _load(KIND_CONFIG_FILE)[0]["name"]
    assert spec["global"]["kubelet"]["tlsVerify"] is False


def test_monitors_and_dashboard_compare_v2_with_v1() -> None:
    monitors = [o for o in _all() if o["kind"] == "DatadogMonitor"]
    assert len(monitors) >= 1
    for monitor in monitors:
        assert "version:v1" in monitor["spec"]["query"] and "version:v2" in monitor["spec"]["query"]
    envs = {
        o["spec"]["template"]["metadata"]["labels"]["tags.datadoghq.com/env"]
        for o in _all()
        if o["kind"] == "Deployment"
    }
    assert len(envs) == 1, envs
    (env,) = envs
    for monitor in monitors:
        assert f"env:{env}" in monitor["spec"]["query"]
    dashboard = _one("DatadogDashboard", "text-to-speech-canary")
    widgets = json.loads(dashboard["spec"]["widgets"])
    queries = " ".join(
        q["query"] for w in widgets for r in w["definition"]["requests"] for q in r["queries"]
    )
    assert "by {version}" in queries and "p99:" in queries and ".errors" in queries
    assert f"env:{env}" in queries


# --------------------------------------------------------------------------- secrets


def test_no_secret_values_in_the_repository() -> None:
    assert not [o for o in _all() if o["kind"] == "Secret"], "Secrets come from the bootstrap"
    for secret in _load(SECRETS_EXAMPLE_FILE):
        for value in secret["stringData"].values():
            assert value.startswith("<") and value.endswith(">"), "placeholder values only"


@pytest.mark.parametrize("relative", ["k8s/apps", "k8s/istio", "k8s/datadog", "k8s/metallb"])
def test_kustomizations_never_include_the_secret_example(relative: str) -> None:
    text = (ROOT / relative / "kustomization.yaml").read_text()
    assert "secrets" not in text and Path(SECRETS_EXAMPLE_FILE).name not in text


def test_front_outbound_timeouts_fit_in_one_mesh_try() -> None:
    """A front's book fetch plus synthesis ends (as its own 503) before Envoy's per-try timeout."""
    from repocheck.k8s.apps import load_settings, package_for
    from repocheck.k8s.served import literal_env
    from repocheck.k8s.shutdown import duration_s

    per_try = min(duration_s(r["retries"]["perTryTimeout"]) for r in _http("text-to-speech"))
    for version in ("v1", "v2"):
        (container,) = _one("Deployment", f"text-to-speech-{version}")["spec"]["template"]["spec"][
            "containers"
        ]
        package = package_for(container["image"])
        assert package is not None
        settings = load_settings(package, literal_env(container))
        assert settings.books_timeout_s + settings.tts_timeout_s < per_try, version
