"""Graceful shutdown fits in the pod's termination grace period."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from repomodel import istio as mesh
from repomodel.istio import describe
from servicekit.durations import parse_duration

from repocheck.k8s import apps, workloads
from repocheck.k8s.hostnames import find_service
from repocheck.k8s.inventory import Inventory
from repocheck.k8s.istio import http_destinations
from repocheck.k8s.manifests import Obj
from repocheck.k8s.served import literal_env

KUBERNETES_DEFAULT_GRACE_S = 30
# The kind node is Kubernetes 1.33 (k8s/kind/cluster.yaml), so Istio 1.30 injects
# a native sidecar: it is stopped only after the app containers have exited and
# then drains for Istio's default terminationDrainDuration (5 s), all inside the
# same terminationGracePeriodSeconds. (A classic sidecar, on Kubernetes < 1.33,
# would get SIGTERM together with the app and leave after 5 s, cutting the app's
# in-flight calls: the pinned node version is what makes this budget right.)
SIDECAR_DRAIN_S = 5.0
# An Istio duration (``500ms``, ``5s``, ``1m30s``) in seconds: the parser the
# local gateway reads the same timeouts with.
duration_s = parse_duration


def _pre_stop_s(container: Mapping[str, Any]) -> float:
    pre_stop = ((container.get("lifecycle") or {}).get("preStop")) or {}
    return float((pre_stop.get("sleep") or {}).get("seconds", 0))


def _longest_route_timeout_s(inventory: Inventory, workload: Obj) -> float:
    """The longest mesh route timeout of the requests that reach ``workload``."""
    labels = workloads.pod_labels(workload)
    longest = 0.0
    for vs in inventory.of_kind("VirtualService"):
        rules = (vs.get("spec") or {}).get("http") or []
        for index, destination in http_destinations(vs):
            host = str(destination.get("host", ""))
            service = find_service(inventory.everything, host, mesh.namespace(vs))
            selector = ((service or {}).get("spec") or {}).get("selector") or {}
            if service is None or mesh.namespace(service) != mesh.namespace(workload):
                continue
            if workloads.selects(selector, labels) and rules[index].get("timeout"):
                longest = max(longest, duration_s(str(rules[index]["timeout"])))
    return longest


def _app_grace_s(container: Mapping[str, Any]) -> float:
    """The app's own drain time, if its settings have one (``grace_period_s``)."""
    package = apps.package_for(str(container.get("image", "")))
    if package is None:
        return 0.0
    try:
        settings = apps.load_settings(package, literal_env(container))
    except apps.SettingsError:
        return 0.0  # reported by app_settings_accept_env
    return float(getattr(settings, "grace_period_s", 0.0))


def termination_grace_fits_shutdown(inventory: Inventory) -> list[str]:
    """terminationGracePeriodSeconds covers preStop, the longest request or drain, the sidecar.

    preStop (the wait for endpoint removal) runs first, then SIGTERM; in-flight
    requests may last up to the mesh's route timeout, and an app with its own
    drain period (``grace_period_s`` in its settings) takes that long; then the
    native Istio sidecar stops and drains (``SIDECAR_DRAIN_S``).
    """
    problems: list[str] = []
    for workload in workloads.workloads(inventory.objects):
        pod = workloads.pod_spec(workload)
        budget = float(pod.get("terminationGracePeriodSeconds", KUBERNETES_DEFAULT_GRACE_S))
        requests_s = _longest_route_timeout_s(inventory, workload)
        for container in workloads.containers(workload):
            app_s = _pre_stop_s(container) + max(requests_s, _app_grace_s(container))
            needed = app_s + SIDECAR_DRAIN_S
            if needed > budget:
                problems.append(
                    f"{describe(workload)} container {container.get('name')}: shutdown needs "
                    f"{needed:g} s (preStop + max(route timeout, app drain) + native sidecar "
                    f"drain {SIDECAR_DRAIN_S:g} s), "
                    f"terminationGracePeriodSeconds is {budget:g}"
                )
    return problems
