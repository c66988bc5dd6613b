"""Objects that pods and custom resources refer to by name must exist."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from repomodel import istio as mesh
from repomodel.istio import describe

from repocheck.k8s import manifests, workloads
from repocheck.k8s.inventory import Inventory
from repocheck.k8s.manifests import Obj


def _pod_references(workload: Obj) -> Iterator[tuple[str, str, str | None]]:
    """(kind, name, key or None) of every object a workload's pod refers to."""
    spec = workloads.pod_spec(workload)
    if spec.get("serviceAccountName"):
        yield ("ServiceAccount", str(spec["serviceAccountName"]), None)
    for secret in spec.get("imagePullSecrets") or []:
        yield ("Secret", str(secret.get("name")), None)
    for volume in spec.get("volumes") or []:
        if "persistentVolumeClaim" in volume:
            yield (
                "PersistentVolumeClaim",
                str(volume["persistentVolumeClaim"].get("claimName")),
                None,
            )
        if "secret" in volume:
            yield ("Secret", str(volume["secret"].get("secretName")), None)
        if "configMap" in volume:
            yield ("ConfigMap", str(volume["configMap"].get("name")), None)
        for source in (volume.get("projected") or {}).get("sources") or []:
            if "secret" in source:
                yield ("Secret", str(source["secret"].get("name")), None)
            if "configMap" in source:
                yield ("ConfigMap", str(source["configMap"].get("name")), None)
    for container in workloads.containers(workload):
        for var in container.get("env") or []:
            source = var.get("valueFrom") or {}
            if "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                yield ("Secret", str(ref.get("name")), str(ref.get("key")))
            if "configMapKeyRef" in source:
                ref = source["configMapKeyRef"]
                yield ("ConfigMap", str(ref.get("name")), str(ref.get("key")))
        for env_from in container.get("envFrom") or []:
            if "secretRef" in env_from:
                yield ("Secret", str(env_from["secretRef"].get("name")), None)
            if "configMapRef" in env_from:
                yield ("ConfigMap", str(env_from["configMapRef"].get("name")), None)


def _custom_resource_references(obj: Obj) -> Iterator[tuple[str, str, str | None]]:
    """Secrets a DatadogAgent reads its API/app keys from, or a CloudNativePG Cluster its
    owner's credentials from."""
    if mesh.kind(obj) == "Cluster" and manifests.group(obj) == "postgresql.cnpg.io":
        initdb = ((obj.get("spec") or {}).get("bootstrap") or {}).get("initdb") or {}
        secret = (initdb.get("secret") or {}).get("name")
        if secret:
            yield ("Secret", str(secret), "password")
        return
    if mesh.kind(obj) != "DatadogAgent":
        return
    credentials = (((obj.get("spec") or {}).get("global")) or {}).get("credentials") or {}
    for field in ("apiSecret", "appSecret"):
        ref = credentials.get(field)
        if ref:
            yield ("Secret", str(ref.get("secretName")), ref.get("keyName"))


def _keys(obj: Mapping[str, Any]) -> set[str]:
    return {str(k) for part in ("data", "stringData", "binaryData") for k in (obj.get(part) or {})}


def referenced_objects_exist(inventory: Inventory) -> list[str]:
    """PVCs, ServiceAccounts, Secrets and ConfigMaps referred to exist (with the key).

    Secrets the bootstrap creates count when k8s/secrets/secrets.example.yaml
    lists them (with placeholder values).
    """
    problems: list[str] = []
    for obj in inventory.objects:
        refs = [*_custom_resource_references(obj)]
        if workloads.is_workload(obj):
            refs.extend(_pod_references(obj))
        ns = mesh.namespace(obj)
        for kind, name, key in refs:
            target = inventory.find(kind, ns, name)
            if target is None:
                problems.append(
                    f"{describe(obj)}: refers to {kind} {ns}/{name}, which does not exist"
                )
            elif key is not None and _keys(target) and key not in _keys(target):
                problems.append(
                    f"{describe(obj)}: refers to key {key!r} of {describe(target)}, "
                    "which has no such key"
                )
    return problems
