"""Pod templates inside workload objects."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from repomodel.istio import kind, namespace

from repocheck.k8s.manifests import Obj

WORKLOAD_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
)


def is_workload(obj: Mapping[str, Any]) -> bool:
    return kind(obj) in WORKLOAD_KINDS


def pod_template(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod (metadata + spec) a workload runs; the Pod itself for a Pod."""
    spec = obj.get("spec") or {}
    if kind(obj) == "Pod":
        return obj
    if kind(obj) == "CronJob":
        return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
    return spec.get("template") or {}


def pod_spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return pod_template(obj).get("spec") or {}


def pod_labels(obj: Mapping[str, Any]) -> dict[str, str]:
    labels = (pod_template(obj).get("metadata") or {}).get("labels") or {}
    return {str(k): str(v) for k, v in labels.items()}


def containers(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Init and regular containers of a workload's pod."""
    spec = pod_spec(obj)
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def workloads(objects: Iterable[Obj]) -> list[Obj]:
    return [o for o in objects if is_workload(o)]


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Does an equality selector (a Service's, or ``matchLabels``) select ``labels``?"""
    return bool(selector) and all(labels.get(str(k)) == str(v) for k, v in selector.items())


def selected(objects: Iterable[Obj], selector: Mapping[str, Any], ns: str) -> list[Obj]:
    """The workloads of namespace ``ns`` whose pods ``selector`` selects (none for no selector)."""
    return [
        w for w in workloads(objects) if namespace(w) == ns and selects(selector, pod_labels(w))
    ]


def container_ports(container: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(container.get("ports") or [])


def port_matches(target: object, ports: Iterable[Mapping[str, Any]]) -> bool:
    """Is ``target`` (a port number or name) one of these container ports?"""
    for port in ports:
        if isinstance(target, int) and port.get("containerPort") == target:
            return True
        if isinstance(target, str) and (
            port.get("name") == target or str(port.get("containerPort")) == target
        ):
            return True
    return False
