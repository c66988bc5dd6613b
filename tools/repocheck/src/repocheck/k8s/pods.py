"""Pod-level policies: security context, resources, graceful shutdown, Datadog tags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from repomodel.istio import describe

from repocheck.k8s import workloads
from repocheck.k8s.inventory import Inventory
from repocheck.k8s.manifests import Obj

APP_UID = 10001
TAGS = ("env", "service", "version")
TAG_LABEL = "tags.datadoghq.com/{}"


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in ((obj.get("metadata") or {}).get("labels") or {}).items()}


def pod_security(inventory: Inventory) -> list[str]:
    """Non-root fixed uid, seccomp RuntimeDefault, read-only root, no privilege, no capabilities."""
    problems: list[str] = []
    for workload in workloads.workloads(inventory.objects):
        pod = workloads.pod_spec(workload)
        security = pod.get("securityContext") or {}
        where = describe(workload)
        if security.get("runAsNonRoot") is not True:
            problems.append(f"{where}: pod securityContext.runAsNonRoot is not true")
        if security.get("runAsUser") != APP_UID or security.get("runAsGroup") != APP_UID:
            problems.append(f"{where}: pod does not run as uid/gid {APP_UID}")
        if (security.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append(f"{where}: pod seccompProfile is not RuntimeDefault")
        if "terminationGracePeriodSeconds" not in pod:
            problems.append(f"{where}: no terminationGracePeriodSeconds (graceful shutdown budget)")
        for container in workloads.containers(workload):
            c_where = f"{where} container {container.get('name')}"
            c_security = container.get("securityContext") or {}
            if c_security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{c_where}: allowPrivilegeEscalation is not false")
            if c_security.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{c_where}: readOnlyRootFilesystem is not true")
            if "ALL" not in ((c_security.get("capabilities") or {}).get("drop") or []):
                problems.append(f"{c_where}: capabilities do not drop ALL")
            if c_security.get("privileged"):
                problems.append(f"{c_where}: privileged")
            resources = container.get("resources") or {}
            for part in ("requests", "limits"):
                missing = {"cpu", "memory"} - set(resources.get(part) or {})
                if missing:
                    problems.append(f"{c_where}: no {part} for {sorted(missing)}")
    return problems


def _from_label(var: Mapping[str, Any], label: str) -> bool:
    field = ((var.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
    return field == f"metadata.labels['{label}']"


def _tagging_problems(workload: Obj) -> list[str]:
    where = describe(workload)
    problems: list[str] = []
    own, pod = _labels(workload), workloads.pod_labels(workload)
    for tag in TAGS:
        label = TAG_LABEL.format(tag)
        if label not in own or label not in pod:
            problems.append(f"{where}: label {label} missing on the workload or its pod template")
        elif own[label] != pod[label]:
            problems.append(f"{where}: label {label} differs between workload and pod template")
    if "version" in pod and pod.get(TAG_LABEL.format("version")) not in (None, pod["version"]):
        problems.append(f"{where}: pod label version differs from {TAG_LABEL.format('version')}")
    for container in workloads.containers(workload):
        env = {str(v.get("name")): v for v in container.get("env") or []}
        c_where = f"{where} container {container.get('name')}"
        for tag in TAGS:
            var = env.get(f"DD_{tag.upper()}")
            if var is None or not _from_label(var, TAG_LABEL.format(tag)):
                problems.append(
                    f"{c_where}: DD_{tag.upper()} is not read from label {TAG_LABEL.format(tag)}"
                )
        host = ((env.get("DD_AGENT_HOST") or {}).get("valueFrom") or {}).get("fieldRef") or {}
        if host.get("fieldPath") != "status.hostIP":
            problems.append(f"{c_where}: DD_AGENT_HOST is not status.hostIP")
        if str((env.get("DD_PROFILING_ENABLED") or {}).get("value", "")).lower() != "true":
            problems.append(f"{c_where}: DD_PROFILING_ENABLED is not true")
    return problems


def unified_service_tagging(inventory: Inventory) -> list[str]:
    """Datadog tags as labels on workload and pod, read into DD_* by the downward API."""
    return [p for w in workloads.workloads(inventory.objects) for p in _tagging_problems(w)]
