"""Cross-checks of the Istio resources against each other and the workloads."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from repomodel import istio as mesh
from repomodel.istio import MESH, bound_gateways, describe, gateway_references, service_key

from repocheck.k8s import workloads
from repocheck.k8s.hostnames import find_service, service_ports
from repocheck.k8s.inventory import Inventory
from repocheck.k8s.manifests import Obj

_PRINCIPAL = re.compile(r"^(?P<trust>[^/*]+)/ns/(?P<ns>[^/*]+)/sa/(?P<sa>[^/*]+)$")


def http_destinations(vs: Mapping[str, Any]) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(rule index, destination) of every HTTP route of a VirtualService."""
    for index, rule in enumerate((vs.get("spec") or {}).get("http") or []):
        for route in rule.get("route") or []:
            yield index, route.get("destination") or {}


def _gateway_accepts(gateway: Mapping[str, Any], host: str) -> bool:
    for server in (gateway.get("spec") or {}).get("servers") or []:
        for entry in server.get("hosts") or []:
            pattern = str(entry).rpartition("/")[2]
            if pattern in ("*", host):
                return True
            if pattern.startswith("*.") and host.endswith(pattern[1:]):
                return True
    return False


def virtual_service_hosts_exist(inventory: Inventory) -> list[str]:
    """Hosts, gateways and destinations of every VirtualService exist.

    A host is a Service (a wildcard only on a VirtualService not bound to the
    mesh, as Istio's validation requires) that the bound Gateways accept;
    every destination is a Service and names one of its ports when it has
    several.
    """
    problems: list[str] = []
    everything = inventory.everything
    for vs in inventory.of_kind("VirtualService"):
        ns = mesh.namespace(vs)
        gateways = bound_gateways(vs)
        bound: list[Obj] = []
        for gw_ns, gw_name in gateway_references(gateways, ns):
            gateway = inventory.find("Gateway", gw_ns, gw_name)
            if gateway is None:
                problems.append(f"{describe(vs)}: Gateway {gw_ns}/{gw_name} does not exist")
            else:
                bound.append(gateway)
        for raw_host in (vs.get("spec") or {}).get("hosts") or []:
            host = str(raw_host)
            if "*" in host:
                if MESH in gateways:
                    problems.append(
                        f"{describe(vs)}: wildcard host {host!r} on a VirtualService bound to "
                        "the mesh (Istio rejects it)"
                    )
            elif find_service(everything, host, ns) is None:
                problems.append(f"{describe(vs)}: host {host!r} is not a Service")
            for gateway in bound:
                if not _gateway_accepts(gateway, host):
                    problems.append(
                        f"{describe(vs)}: host {host!r} is not served by {describe(gateway)}"
                    )
        for index, destination in http_destinations(vs):
            host = str(destination.get("host", ""))
            service = find_service(everything, host, ns)
            where = f"{describe(vs)}: http[{index}] destination {host!r}"
            if service is None:
                problems.append(f"{where} is not a Service")
                continue
            number = (destination.get("port") or {}).get("number")
            ports = service_ports(service)
            if number is None and len(ports) > 1:
                problems.append(f"{where}: no port, and {describe(service)} has several {ports}")
            elif number is not None and number not in ports:
                problems.append(
                    f"{where}: port {number} is not a port of {describe(service)} {ports}"
                )
    return problems


def _subsets(
    inventory: Inventory,
) -> tuple[dict[tuple[str, str], dict[str, dict[str, str]]], list[str]]:
    """Subsets by Service key, and the problems of the DestinationRules themselves."""
    subsets: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
    problems: list[str] = []
    for dr in inventory.of_kind("DestinationRule"):
        ns = mesh.namespace(dr)
        host = str((dr.get("spec") or {}).get("host", ""))
        service = find_service(inventory.everything, host, ns)
        if service is None:
            problems.append(f"{describe(dr)}: host {host!r} is not a Service")
            continue
        key = service_key(host, ns)
        assert key is not None
        selector = (service.get("spec") or {}).get("selector") or {}
        pods = [
            workloads.pod_labels(w) for w in workloads.selected(inventory.objects, selector, key[0])
        ]
        for subset in (dr.get("spec") or {}).get("subsets") or []:
            labels = {str(k): str(v) for k, v in (subset.get("labels") or {}).items()}
            subsets.setdefault(key, {})[str(subset.get("name"))] = labels
            if not any(workloads.selects(labels, pod) for pod in pods):
                problems.append(
                    f"{describe(dr)}: subset {subset.get('name')!r} labels {labels} match no pod "
                    f"of {describe(service)}"
                )
    return subsets, problems


def subsets_exist_and_match_pods(inventory: Inventory) -> list[str]:
    """Every subset a route names is in a DestinationRule and selects real pods."""
    subsets, problems = _subsets(inventory)
    for vs in inventory.of_kind("VirtualService"):
        ns = mesh.namespace(vs)
        for index, destination in http_destinations(vs):
            subset = destination.get("subset")
            if subset is None:
                continue
            host = str(destination.get("host", ""))
            key = service_key(host, ns)
            if key is None or str(subset) not in subsets.get(key, {}):
                problems.append(
                    f"{describe(vs)}: http[{index}] subset {subset!r} of {host!r} is in no "
                    "DestinationRule"
                )
    return problems


def route_weights_sum_to_100(inventory: Inventory) -> list[str]:
    """Each HTTP route's destination weights add up to 100."""
    problems: list[str] = []
    for vs in inventory.of_kind("VirtualService"):
        for index, rule in enumerate((vs.get("spec") or {}).get("http") or []):
            routes = rule.get("route") or []
            if len(routes) == 1 and routes[0].get("weight") in (None, 100):
                continue
            weights = [r.get("weight") for r in routes]
            if None in weights:
                problems.append(
                    f"{describe(vs)}: http[{index}] has several destinations, not all weighted"
                )
            elif sum(int(w) for w in weights) != 100:
                problems.append(
                    f"{describe(vs)}: http[{index}] weights {weights} add up to "
                    f"{sum(weights)}, not 100"
                )
    return problems


def gateway_catch_all_mirrors_mesh_routes(inventory: Inventory) -> list[str]:
    """A wildcard-host gateway VirtualService repeats the mesh ones' rules exactly.

    Istio forbids the host ``*`` on a VirtualService bound to the mesh, so the
    rules that answer any Host at the gateway live in a gateway-only
    VirtualService (``edge``). It must equal, rule for rule, the rules of the
    VirtualServices bound to the same gateway and to the mesh, in order.
    """
    problems: list[str] = []
    services = inventory.of_kind("VirtualService")
    for vs in services:
        hosts = [str(h) for h in (vs.get("spec") or {}).get("hosts") or []]
        gateways = set(bound_gateways(vs))
        if "*" not in hosts or MESH in gateways:
            continue
        sources = [
            other
            for other in services
            if other is not vs
            and MESH in bound_gateways(other)
            and gateways & set(bound_gateways(other))
        ]
        expected = [
            rule for other in sources for rule in (other.get("spec") or {}).get("http") or []
        ]
        actual = list((vs.get("spec") or {}).get("http") or [])
        names = " + ".join(mesh.name(o) for o in sources) or "(none)"
        if actual == expected:
            continue
        differing = next(
            (i for i, (a, e) in enumerate(zip(actual, expected, strict=False)) if a != e),
            min(len(actual), len(expected)),
        )
        problems.append(
            f"{describe(vs)}: http differs from the rules of {names} from rule {differing} on "
            f"({len(actual)} rules, expected {len(expected)})"
        )
    return problems


def authorization_principals_are_service_accounts(inventory: Inventory) -> list[str]:
    """Every principal an AuthorizationPolicy names is a real ServiceAccount.

    Also: a policy's selector selects some workload in its namespace.
    """
    problems: list[str] = []
    for policy in inventory.of_kind("AuthorizationPolicy"):
        spec = policy.get("spec") or {}
        ns = mesh.namespace(policy)
        selector = (spec.get("selector") or {}).get("matchLabels")
        if selector and not workloads.selected(inventory.objects, selector, ns):
            problems.append(f"{describe(policy)}: selector {selector} matches no workload")
        for rule in spec.get("rules") or []:
            for source in rule.get("from") or []:
                src = source.get("source") or {}
                for principal in [
                    *(src.get("principals") or []),
                    *(src.get("notPrincipals") or []),
                ]:
                    match = _PRINCIPAL.match(str(principal))
                    if match is None:
                        problems.append(
                            f"{describe(policy)}: principal {principal!r} is not "
                            "<trust-domain>/ns/<namespace>/sa/<serviceaccount>"
                        )
                    elif inventory.find("ServiceAccount", match["ns"], match["sa"]) is None:
                        problems.append(
                            f"{describe(policy)}: principal {principal!r}: no ServiceAccount "
                            f"{match['ns']}/{match['sa']}"
                        )
    return problems
