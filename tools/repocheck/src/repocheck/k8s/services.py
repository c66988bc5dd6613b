"""Cross-checks between Services, workloads and the addresses in env vars."""

from __future__ import annotations

from repomodel import istio as mesh
from repomodel.istio import describe

from repocheck.k8s import workloads
from repocheck.k8s.hostnames import find_service, parse_address, service_ports
from repocheck.k8s.inventory import Inventory
from repocheck.k8s.manifests import Obj


def _selected(inventory: Inventory, service: Obj) -> list[Obj]:
    selector = (service.get("spec") or {}).get("selector") or {}
    return workloads.selected(inventory.objects, selector, mesh.namespace(service))


def service_selectors_match_pods(inventory: Inventory) -> list[str]:
    """Every Service with a selector selects the pods of at least one workload."""
    problems: list[str] = []
    for service in inventory.of_kind("Service"):
        selector = (service.get("spec") or {}).get("selector")
        if not selector:
            continue
        if not _selected(inventory, service):
            problems.append(
                f"{describe(service)}: selector {selector} matches no pod template in "
                f"namespace {mesh.namespace(service)}"
            )
    return problems


def service_target_ports_match_containers(inventory: Inventory) -> list[str]:
    """Every Service port's targetPort is a container port of every selected pod."""
    problems: list[str] = []
    for service in inventory.of_kind("Service"):
        for workload in _selected(inventory, service):
            ports = [
                p for c in workloads.containers(workload) for p in workloads.container_ports(c)
            ]
            for port in (service.get("spec") or {}).get("ports") or []:
                target = port.get("targetPort", port.get("port"))
                if not workloads.port_matches(target, ports):
                    problems.append(
                        f"{describe(service)}: port {port.get('name') or port.get('port')} "
                        f"targets {target!r}, which no container of {describe(workload)} exposes"
                    )
    return problems


def env_addresses_point_at_services(inventory: Inventory) -> list[str]:
    """Every URL or address in an env var names an existing Service and one of its ports."""
    problems: list[str] = []
    for workload in workloads.workloads(inventory.objects):
        ns = mesh.namespace(workload)
        for container in workloads.containers(workload):
            for var in container.get("env") or []:
                value = var.get("value")
                if not isinstance(value, str):
                    continue
                address = parse_address(str(var.get("name")), value)
                if address is None:
                    continue
                where = f"{describe(workload)} container {container.get('name')} env {var['name']}"
                service = find_service(inventory.everything, address.host, ns)
                if service is None:
                    problems.append(f"{where}={value}: no Service {address.host!r} in the cluster")
                elif address.port not in service_ports(service):
                    problems.append(
                        f"{where}={value}: {describe(service)} has no port {address.port} "
                        f"(ports {service_ports(service)})"
                    )
    return problems
