"""Cross-checks of k8s/: each passes on the repository and fails on a broken copy.

Every negative case breaks one manifest in a temporary copy of k8s/ and
expects the check to fail with a message naming the broken object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from repocheck import suite
from testkit.k8s import (
    broken_copy,
    container,
    copy_inventory,
    env_var,
    find,
    repo_inventory,
)

Docs = list[dict[str, Any]]


@pytest.mark.parametrize("name", list(suite.CROSS_CHECKS))
def test_check_passes_on_the_repository(name: str) -> None:
    assert suite.CROSS_CHECKS[name](repo_inventory()) == []


def _variants() -> list[Path]:
    from repocheck.k8s.manifests import K8S_DIR, REPO_ROOT, overlay_dirs
    from testkit.k8s import repo_rendered

    return overlay_dirs(REPO_ROOT / K8S_DIR, repo_rendered())


@pytest.mark.parametrize("name", list(suite.CROSS_CHECKS))
def test_check_passes_on_every_overlay(name: str) -> None:
    from repocheck.k8s.manifests import REPO_ROOT
    from testkit.k8s import repo_built_images, repo_rendered

    assert _variants()
    for overlay in _variants():
        variant = suite.variant_inventory(REPO_ROOT, repo_rendered(), overlay, repo_built_images())
        assert suite.CROSS_CHECKS[name](variant) == [], overlay


def test_overlay_objects_replace_the_base_ones() -> None:
    from repocheck.k8s.manifests import REPO_ROOT
    from testkit.k8s import repo_rendered

    (overlay,) = [o for o in _variants() if o.name == "books-postgres"]
    variant = suite.variant_inventory(REPO_ROOT, repo_rendered(), overlay)
    books = variant.find("Deployment", "apps", "books")
    assert books is not None and books["spec"]["replicas"] == 3


def test_a_broken_overlay_fails_the_checks(tmp_path: Path) -> None:
    """The database URL names a Service CloudNativePG does not make: env-addresses fails."""

    def mutate(docs: Docs) -> None:
        env = docs[0]["spec"]["template"]["spec"]["containers"][0]["env"]
        for var in env:
            if var["name"] == "BOOKS_DATABASE_URL":
                var["value"] = var["value"].replace("books-db-rw", "books-db-primary")

    root = broken_copy(tmp_path, "k8s/components/books-postgres/books-deployment.yaml", mutate)
    report = suite.run(root, with_tilt=False)
    problems = report.problems["env-addresses"]
    assert any("k8s/overlays/books-postgres" in p and "books-db-primary" in p for p in problems), (
        problems
    )


@dataclass(frozen=True)
class Breakage:
    check: str
    file: str
    mutate: Callable[[Docs], None]
    names: str  # the object the message must name

    def __str__(self) -> str:
        return f"{self.check}:{self.names}"


def _set(path: list[Any], value: Any) -> Callable[[Any], None]:
    def apply(obj: Any) -> None:
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value

    return apply


def _replace_env(container_spec: dict[str, Any], var: dict[str, Any]) -> None:
    """Put ``var`` in place of the env var of the same name."""
    env = container_spec["env"]
    env[[v["name"] for v in env].index(var["name"])] = var


def _deployment(docs: Docs, name: str) -> dict[str, Any]:
    return find(docs, "Deployment", name)


def _env_value(
    workload: str, var: str, value: str, name: str | None = None
) -> Callable[[Docs], None]:
    """Set env var ``var`` of the Deployment's container (the first, or ``name``) to ``value``."""
    return lambda d: env_var(container(d, workload, name), var).update(value=value)


def _vs_http(docs: Docs, name: str) -> list[dict[str, Any]]:
    return find(docs, "VirtualService", name)["spec"]["http"]  # type: ignore[no-any-return]


BREAKAGES = [
    Breakage(
        "service-selectors",
        "k8s/apps/books.yaml",
        lambda d: _set(["spec", "selector", "app"], "bookz")(find(d, "Service", "books")),
        "Service apps/books",
    ),
    Breakage(
        "service-target-ports",
        "k8s/apps/tts-backend.yaml",
        lambda d: _set(["spec", "ports", 0, "targetPort"], "grpc-web")(
            find(d, "Service", "tts-backend")
        ),
        "Service apps/tts-backend",
    ),
    Breakage(
        "env-addresses",
        "k8s/apps/text-to-speech.yaml",
        _env_value("text-to-speech-v1", "BOOKS_URL", "http://bookz.apps.svc.cluster.local:80"),
        "Deployment apps/text-to-speech-v1",
    ),
    Breakage(
        "env-addresses",
        "k8s/apps/text-to-speech.yaml",
        _env_value(
            "text-to-speech-v2", "TTS_BACKEND_ADDR", "tts-backend.apps.svc.cluster.local:50052"
        ),
        "Deployment apps/text-to-speech-v2",
    ),
    Breakage(
        "env-addresses",
        "k8s/apps/client.yaml",
        _env_value(
            "client", "POLL_BOOKS_URL", "http://books.apps.svc.cluster.local:8080", "poll-mesh"
        ),
        "Deployment apps/client",
    ),
    Breakage(
        "virtualservice-hosts",
        "k8s/istio/virtualservices.yaml",
        lambda d: _set(["spec", "hosts"], ["bookz.apps.svc.cluster.local"])(
            find(d, "VirtualService", "books")
        ),
        "VirtualService apps/books",
    ),
    Breakage(
        "virtualservice-hosts",
        "k8s/istio/virtualservices.yaml",
        lambda d: _set(["spec", "hosts"], ["*"])(find(d, "VirtualService", "text-to-speech")),
        "VirtualService apps/text-to-speech",
    ),
    Breakage(
        "virtualservice-hosts",
        "k8s/istio/virtualservices.yaml",
        lambda d: _set(["route", 0, "destination", "port", "number"], 8080)(
            _vs_http(d, "books")[0]
        ),
        "VirtualService apps/books",
    ),
    Breakage(
        "virtualservice-hosts",
        "k8s/istio/virtualservices.yaml",
        lambda d: _set(["spec", "gateways", 0], "apps/public-gateway")(
            find(d, "VirtualService", "edge")
        ),
        "VirtualService apps/edge",
    ),
    Breakage(
        "subsets",
        "k8s/istio/virtualservices.yaml",
        lambda d: _set(["route", 0, "destination", "subset"], "v3")(
            _vs_http(d, "text-to-speech")[0]
        ),
        "VirtualService apps/text-to-speech",
    ),
    Breakage(
        "subsets",
        "k8s/istio/destinationrules.yaml",
        lambda d: _set(["spec", "subsets", 1, "labels", "version"], "canary")(
            find(d, "DestinationRule", "text-to-speech")
        ),
        "DestinationRule apps/text-to-speech",
    ),
    Breakage(
        "route-weights",
        "k8s/istio/virtualservices.yaml",
        lambda d: _set(["route", 1, "weight"], 40)(_vs_http(d, "text-to-speech")[-1]),
        "VirtualService apps/text-to-speech",
    ),
    Breakage(
        "mirrored-routes",
        "k8s/istio/virtualservices.yaml",
        lambda d: (
            _set(["route", 0, "weight"], 50)(_vs_http(d, "edge")[-1]),
            _set(["route", 1, "weight"], 50)(_vs_http(d, "edge")[-1]),
        ),
        "VirtualService apps/edge",
    ),
    Breakage(
        "authorization-principals",
        "k8s/istio/authorizationpolicies.yaml",
        lambda d: _set(["from", 0, "source", "principals", 1], "cluster.local/ns/apps/sa/poller")(
            find(d, "AuthorizationPolicy", "text-to-speech")["spec"]["rules"][0]
        ),
        "AuthorizationPolicy apps/text-to-speech",
    ),
    Breakage(
        "references",
        "k8s/apps/books.yaml",
        lambda d: _set(
            ["spec", "template", "spec", "volumes", 0, "persistentVolumeClaim", "claimName"],
            "books-db",
        )(_deployment(d, "books")),
        "Deployment apps/books",
    ),
    Breakage(
        "references",
        "k8s/apps/client.yaml",
        lambda d: _set(["spec", "template", "spec", "serviceAccountName"], "poller")(
            _deployment(d, "client")
        ),
        "Deployment apps/client",
    ),
    Breakage(
        "references",
        "k8s/apps/tts-backend.yaml",
        lambda d: _set(
            ["spec", "template", "spec", "volumes", 1, "secret", "secretName"], "gcp-key"
        )(_deployment(d, "tts-backend")),
        "Deployment apps/tts-backend",
    ),
    Breakage(
        "references",
        "k8s/apps/books.yaml",
        lambda d: container(d, "books")["env"].append(
            {
                "name": "EXTRA",
                "valueFrom": {"configMapKeyRef": {"name": "books-config", "key": "x"}},
            }
        ),
        "Deployment apps/books",
    ),
    Breakage(
        "references",
        "k8s/datadog/datadog-agent.yaml",
        lambda d: _set(["spec", "global", "credentials", "apiSecret", "keyName"], "api_key")(
            find(d, "DatadogAgent", "datadog")
        ),
        "DatadogAgent datadog/datadog",
    ),
    Breakage(
        "app-settings",
        "k8s/apps/text-to-speech.yaml",
        _env_value("text-to-speech-v2", "TTS_TIMEOUT_S", "soon"),
        "Deployment apps/text-to-speech-v2",
    ),
    Breakage(
        "probe-paths",
        "k8s/apps/books.yaml",
        lambda d: _set(["readinessProbe", "httpGet", "path"], "/ready")(container(d, "books")),
        "Deployment apps/books",
    ),
    Breakage(
        "probe-paths",
        "k8s/apps/tts-backend.yaml",
        lambda d: _set(["livenessProbe", "grpc", "port"], 50052)(container(d, "tts-backend")),
        "Deployment apps/tts-backend",
    ),
    Breakage(
        "mesh-paths",
        "k8s/istio/virtualservices.yaml",
        lambda d: _set(["match", 0, "uri", "prefix"], "/library")(_vs_http(d, "books")[0]),
        "VirtualService apps/books",
    ),
    Breakage(
        "mesh-paths",
        "k8s/istio/authorizationpolicies.yaml",
        lambda d: _set(["to", 1, "operation", "paths"], ["/synthesize"])(
            find(d, "AuthorizationPolicy", "text-to-speech")["spec"]["rules"][0]
        ),
        "AuthorizationPolicy apps/text-to-speech",
    ),
    Breakage(
        "images",
        "k8s/apps/books.yaml",
        lambda d: container(d, "books").update(image="speech-mesh/library"),
        "Deployment apps/books",
    ),
    Breakage(
        "images",
        "k8s/apps/books.yaml",
        lambda d: container(d, "books").update(image="speech-mesh/books"),
        "'speech-mesh/books' has no fixed tag",
    ),
    # The network policies, the AuthorizationPolicies and the README's flow table.
    Breakage(
        "flows",
        "k8s/apps/networkpolicies.yaml",
        lambda d: find(d, "NetworkPolicy", "tts-backend")["spec"].update(ingress=[]),
        "text-to-speech-v2 -> tts-backend 50051/TCP: no NetworkPolicy allows its ingress",
    ),
    Breakage(
        "flows",
        "k8s/apps/networkpolicies.yaml",
        lambda d: find(d, "NetworkPolicy", "books")["spec"]["ingress"][0]["ports"].append(
            {"port": 9090, "protocol": "TCP"}
        ),
        "NetworkPolicy apps/books: allows client -> books 9090/TCP (ingress)",
    ),
    Breakage(
        "flows",
        "k8s/apps/networkpolicies.yaml",
        lambda d: find(d, "NetworkPolicy", "tts-backend")["spec"]["egress"][0]["to"][0][
            "ipBlock"
        ].pop("except"),
        "ipBlock 0.0.0.0/0 is no workload's address in the table",
    ),
    Breakage(
        "flows",
        "k8s/istio/authorizationpolicies.yaml",
        lambda d: find(d, "AuthorizationPolicy", "tts-backend")["spec"]["rules"][0]["from"][0][
            "source"
        ]["principals"].append("cluster.local/ns/apps/sa/client"),
        "allows client -> tts-backend, which the flow table does not list",
    ),
    Breakage(
        "flows",
        "k8s/istio/authorizationpolicies.yaml",
        lambda d: find(d, "AuthorizationPolicy", "books")["spec"]["rules"].pop(1),
        "flow text-to-speech-v1 -> books: enforced by the mesh",
    ),
    Breakage(
        "pod-security",
        "k8s/apps/books.yaml",
        lambda d: _set(["securityContext", "readOnlyRootFilesystem"], False)(container(d, "books")),
        "Deployment apps/books",
    ),
    Breakage(
        "pod-security",
        "k8s/apps/client.yaml",
        lambda d: _set(["spec", "template", "spec", "securityContext", "runAsUser"], 0)(
            _deployment(d, "client")
        ),
        "Deployment apps/client",
    ),
    Breakage(
        "service-tagging",
        "k8s/apps/text-to-speech.yaml",
        lambda d: _replace_env(
            container(d, "text-to-speech-v2"), {"name": "DD_VERSION", "value": "v2"}
        ),
        "Deployment apps/text-to-speech-v2",
    ),
    Breakage(
        "service-tagging",
        "k8s/apps/text-to-speech.yaml",
        lambda d: _set(
            ["spec", "template", "metadata", "labels", "tags.datadoghq.com/version"], "v3"
        )(_deployment(d, "text-to-speech-v1")),
        "Deployment apps/text-to-speech-v1",
    ),
    Breakage(
        "shutdown-budget",
        "k8s/apps/text-to-speech.yaml",
        lambda d: _set(["spec", "template", "spec", "terminationGracePeriodSeconds"], 20)(
            _deployment(d, "text-to-speech-v2")
        ),
        "Deployment apps/text-to-speech-v2",
    ),
    # 5 s preStop + 30 s route timeout fit in 38 s, but not the native sidecar's
    # 5 s drain after the app exits (Kubernetes 1.33 node: k8s/kind/cluster.yaml).
    Breakage(
        "shutdown-budget",
        "k8s/apps/text-to-speech.yaml",
        lambda d: _set(["spec", "template", "spec", "terminationGracePeriodSeconds"], 38)(
            _deployment(d, "text-to-speech-v1")
        ),
        "Deployment apps/text-to-speech-v1",
    ),
    Breakage(
        "references",
        "k8s/components/books-postgres/books-db.yaml",
        lambda d: _set(["spec", "bootstrap", "initdb", "secret", "name"], "nope")(
            find(d, "Cluster", "books-db")
        ),
        "Cluster apps/books-db",
    ),
    Breakage(
        "shutdown-budget",
        "k8s/apps/tts-backend.yaml",
        lambda d: container(d, "tts-backend")["env"].append(
            {"name": "TTS_GRACE_PERIOD_S", "value": "60"}
        ),
        "Deployment apps/tts-backend",
    ),
]


@pytest.mark.parametrize("breakage", BREAKAGES, ids=str)
def test_check_fails_on_a_broken_copy(tmp_path: Path, breakage: Breakage) -> None:
    root = broken_copy(tmp_path, breakage.file, breakage.mutate)
    problems = suite.CROSS_CHECKS[breakage.check](copy_inventory(root))
    assert problems, f"{breakage.check} passed on a copy broken in {breakage.file}"
    assert any(breakage.names in p for p in problems), problems


def test_every_check_has_a_negative_case() -> None:
    assert {b.check for b in BREAKAGES} == set(suite.CROSS_CHECKS)


def test_a_flow_missing_from_the_readme_table_fails_the_flows_check(tmp_path: Path) -> None:
    root = broken_copy(tmp_path, "k8s/apps/namespace.yaml", lambda d: None)
    readme = root / "k8s/README.md"
    rows = readme.read_text().splitlines(keepends=True)
    kept = [r for r in rows if not r.startswith("| `tts-backend` | `google-tts` |")]
    assert len(kept) == len(rows) - 1
    readme.write_text("".join(kept))
    problems = suite.CROSS_CHECKS["flows"](copy_inventory(root))
    assert any(
        "NetworkPolicy apps/tts-backend: allows tts-backend -> google-tts 443/TCP (egress)" in p
        for p in problems
    ), problems


def test_a_service_account_other_than_the_tables_fails_the_flows_check(tmp_path: Path) -> None:
    root = broken_copy(
        tmp_path,
        "k8s/apps/text-to-speech.yaml",
        lambda d: _set(["spec", "template", "spec", "serviceAccountName"], "text-to-speech-v1")(
            _deployment(d, "text-to-speech-v2")
        ),
    )
    problems = suite.CROSS_CHECKS["flows"](copy_inventory(root))
    assert any(
        "Deployment apps/text-to-speech-v2: ServiceAccount 'text-to-speech-v1'" in p
        for p in problems
    ), problems


def test_a_password_file_outside_any_secret_mount_fails_app_settings(tmp_path: Path) -> None:
    def mutate(docs: Docs) -> None:
        for var in docs[0]["spec"]["template"]["spec"]["containers"][0]["env"]:
            if var["name"] == "BOOKS_DATABASE_PASSWORD_FILE":
                var["value"] = "/etc/books/password"

    root = broken_copy(tmp_path, "k8s/components/books-postgres/books-deployment.yaml", mutate)
    report = suite.run(root, with_tilt=False)
    assert any(
        "BOOKS_DATABASE_PASSWORD_FILE='/etc/books/password' is not under a mounted Secret" in p
        for p in report.problems["app-settings"]
    ), report.problems["app-settings"]
