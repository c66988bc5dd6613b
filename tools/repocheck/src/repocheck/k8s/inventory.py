"""Everything the cluster will hold, as far as the repository can tell.

The objects of every kustomization under ``k8s/``, plus what the bootstrap
creates outside kustomize and the manifests may still reference:

- the Istio ingress gateway (``k8s/istio/install/istio-operator.yaml``, read
  by ``istioctl install``): its Service and its ServiceAccount, which istioctl
  names ``<gateway>-service-account``;
- the Secrets that ``scripts/cluster-up`` creates from the environment, listed
  with placeholder values in ``k8s/secrets/secrets.example.yaml``;
- the Services the CloudNativePG operator creates for each ``Cluster``
  (``<name>-rw``, ``-ro``, ``-r`` on port 5432) and for each ``Pooler`` (its
  own name, port 5432).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repomodel import istio as mesh

from repocheck.k8s import manifests
from repocheck.k8s.manifests import Obj

ISTIO_OPERATOR_FILE = "k8s/istio/install/istio-operator.yaml"
SECRETS_EXAMPLE_FILE = "k8s/secrets/secrets.example.yaml"
KIND_CONFIG_FILE = "k8s/kind/cluster.yaml"
# Where the flow table lives (the "Security" section), which the policies follow.
FLOW_TABLE_FILE = "k8s/README.md"
ISTIO_NAMESPACE = "istio-system"


@dataclass
class Inventory:
    """Objects by source; the checks read it, never the files."""

    objects: list[Obj]
    provided: list[Obj] = field(default_factory=list)
    built_images: frozenset[str] | None = None
    flow_table: str | None = None  # the text of FLOW_TABLE_FILE (repocheck.k8s.flows)

    @property
    def everything(self) -> list[Obj]:
        """The rendered objects and the ones the bootstrap provides."""
        return [*self.objects, *self.provided]

    def find(self, kind: str, namespace: str, name: str) -> Obj | None:
        for obj in self.everything:
            if (
                mesh.kind(obj) == kind
                and mesh.namespace(obj) == namespace
                and mesh.name(obj) == name
            ):
                return obj
        return None

    def of_kind(self, *kinds: str) -> list[Obj]:
        return mesh.of_kind(self.objects, *kinds)


def render_all(k8s_root: Path, *, roots_only: bool = False) -> dict[Path, list[Obj]]:
    """Each kustomization under ``k8s_root`` rendered once.

    ``roots_only``: skip the ones another kustomization includes (their objects
    are in the includer's render already), for a faster inventory.
    """
    directories = manifests.kustomization_dirs(k8s_root)
    if roots_only:
        directories = manifests.root_kustomizations(directories)
    return {d: manifests.render(d) for d in directories}


def istio_provided_objects(operator: Mapping[str, Any]) -> list[Obj]:
    """The gateway Services and ServiceAccounts ``istioctl install`` creates."""
    provided: list[Obj] = []
    components = (operator.get("spec") or {}).get("components") or {}
    for gateway in components.get("ingressGateways") or []:
        if gateway.get("enabled") is False:
            continue
        name = str(gateway["name"])
        ns = str(gateway.get("namespace") or ISTIO_NAMESPACE)
        labels = dict(gateway.get("label") or {})
        service = ((gateway.get("k8s") or {}).get("service")) or {}
        provided.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": ns, "labels": labels},
                "spec": {"type": service.get("type"), "ports": service.get("ports") or []},
            }
        )
        provided.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": f"{name}-service-account", "namespace": ns},
            }
        )
    return provided


CNPG_GROUP = "postgresql.cnpg.io"
CNPG_SERVICE_SUFFIXES = ("rw", "ro", "r")
POSTGRES_PORT = 5432


def _postgres_service(name: str, namespace: str, port_name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"ports": [{"name": port_name, "port": POSTGRES_PORT}]},
    }


def cnpg_provided_objects(objects: Iterable[Obj]) -> list[Obj]:
    """The Services CloudNativePG makes for each of its Clusters and Poolers."""
    provided: list[Obj] = []
    for obj in objects:
        if manifests.group(obj) != CNPG_GROUP:
            continue
        name, namespace = mesh.name(obj), mesh.namespace(obj)
        if mesh.kind(obj) == "Cluster":
            for suffix in CNPG_SERVICE_SUFFIXES:
                provided.append(_postgres_service(f"{name}-{suffix}", namespace, "postgres"))
        elif mesh.kind(obj) == "Pooler":
            provided.append(_postgres_service(name, namespace, "pgbouncer"))
    return provided


def load_inventory(
    repo_root: Path,
    rendered: Mapping[Path, list[Obj]] | None = None,
    built_images: Iterable[str] | None = None,
) -> Inventory:
    """The inventory of a repository (or of a broken copy of it, in tests)."""
    rendered = rendered if rendered is not None else render_all(repo_root / manifests.K8S_DIR)
    objects = manifests.unique(o for objs in rendered.values() for o in objs)
    provided: list[Obj] = cnpg_provided_objects(objects)
    operator_file = repo_root / ISTIO_OPERATOR_FILE
    if operator_file.is_file():
        for operator in manifests.load_file(operator_file):
            provided.extend(istio_provided_objects(operator))
    secrets_file = repo_root / SECRETS_EXAMPLE_FILE
    if secrets_file.is_file():
        provided.extend(mesh.of_kind(manifests.load_file(secrets_file), "Secret"))
    flow_file = repo_root / FLOW_TABLE_FILE
    return Inventory(
        objects=objects,
        provided=provided,
        built_images=frozenset(built_images) if built_images is not None else None,
        flow_table=flow_file.read_text() if flow_file.is_file() else None,
    )
