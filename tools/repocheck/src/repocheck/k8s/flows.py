"""The flow table of k8s/README.md against the NetworkPolicies and AuthorizationPolicies.

The table is written once, in the README's "Security" section: a table of
workloads (name, namespace, the pod labels that identify them, their
ServiceAccount) and a table of flows (from, to, ports, enforced by: mesh,
network policy or both). Both kinds of policy must say exactly that:

- every flow of the table is allowed by the NetworkPolicies, on each side
  that has any (egress of the caller, ingress of the callee);
- every (caller, callee, port) a NetworkPolicy rule allows is in the table;
- every mesh flow of the table (enforced by ``mesh`` or ``both``) is allowed
  by an AuthorizationPolicy of the callee, by the caller's principal;
- every (principal, callee) an ALLOW rule names is a mesh flow of the table.

A flow is only checked when both ends exist in the variant checked: the
workloads in the repository's namespaces exist when a workload (or a
CloudNativePG Cluster) with those pod labels is rendered; the others (the
gateway, istiod, kube-dns, the Datadog agent, the operator, addresses) always.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from repomodel import istio as mesh
from repomodel.istio import describe

from repocheck.k8s import workloads
from repocheck.k8s.inventory import Inventory
from repocheck.k8s.manifests import Obj

TRUST_DOMAIN = "cluster.local"
NAMESPACE_LABEL = "kubernetes.io/metadata.name"
ANY_ADDRESS = "any address"
IPBLOCK = "ipBlock "
ENFORCERS = {
    "mesh": {"mesh"},
    "network policy": {"network policy"},
    "both": {"mesh", "network policy"},
}
CNPG_CLUSTER_LABEL = "cnpg.io/cluster"

_CODE = re.compile(r"`([^`]*)`")
_PORT = re.compile(r"^(\d+)/(TCP|UDP|SCTP)$")


@dataclass(frozen=True)
class Workload:
    name: str
    namespace: str
    labels: tuple[tuple[str, str], ...]  # empty for an address
    service_account: str
    address: str = ""  # "any address", or "ipBlock <cidr> ..." for outside the cluster

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def ip_block(self) -> tuple[frozenset[str], frozenset[str]]:
        """(CIDRs, CIDRs excepted) of an ``ipBlock A, B except C, D`` address."""
        if not self.address.startswith(IPBLOCK):
            return frozenset(), frozenset()
        cidrs, _, excepted = self.address[len(IPBLOCK) :].partition(" except ")

        def split(text: str) -> frozenset[str]:
            return frozenset(c.strip() for c in text.split(",") if c.strip())

        return split(cidrs), split(excepted)


Flow = tuple[str, str, str]  # (from, to, "port/PROTOCOL")


@dataclass(frozen=True)
class FlowTable:
    workloads: dict[str, Workload]
    flows: dict[Flow, frozenset[str]]  # -> enforcers


class TableError(ValueError):
    pass


def _rows(text: str, header: tuple[str, ...]) -> list[list[str]]:
    """The rows of the Markdown table whose header cells are ``header``."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if tuple(cells) != header:
            continue
        rows = []
        for row in lines[index + 2 :]:
            if not row.strip().startswith("|"):
                break
            rows.append([c.strip() for c in row.strip().strip("|").split("|")])
        return rows
    raise TableError(f"no table with the header {' | '.join(header)}")


WORKLOADS_HEADER = ("Workload", "Namespace", "Pods", "ServiceAccount")
FLOWS_HEADER = ("From", "To", "Ports", "Enforced by")


def parse_table(text: str) -> FlowTable:
    """The workloads and flows tables of the README (``TableError`` when malformed)."""
    found: dict[str, Workload] = {}
    for cells in _rows(text, WORKLOADS_HEADER):
        if len(cells) != len(WORKLOADS_HEADER):
            raise TableError(f"workloads row {cells}: {len(WORKLOADS_HEADER)} cells expected")
        names = _CODE.findall(cells[0])
        if len(names) != 1:
            raise TableError(f"workloads row {cells}: one `name` expected")
        pods = _CODE.findall(cells[2])
        address = ""
        labels: list[tuple[str, str]] = []
        for pod in pods:
            if pod == ANY_ADDRESS or pod.startswith(IPBLOCK):
                address = pod
            elif "=" in pod:
                key, _, value = pod.partition("=")
                labels.append((key, value))
            else:
                raise TableError(f"workload {names[0]}: {pod!r} is not label=value")
        if not labels and not address:
            raise TableError(f"workload {names[0]}: no pod labels or address")
        accounts = _CODE.findall(cells[3])
        found[names[0]] = Workload(
            names[0], cells[1].strip("`"), tuple(labels), accounts[0] if accounts else "", address
        )
    flows: dict[Flow, frozenset[str]] = {}
    for cells in _rows(text, FLOWS_HEADER):
        if len(cells) != len(FLOWS_HEADER):
            raise TableError(f"flows row {cells}: {len(FLOWS_HEADER)} cells expected")
        sources, targets, ports = (_CODE.findall(c) for c in cells[:3])
        enforcers = ENFORCERS.get(cells[3].strip())
        if enforcers is None:
            raise TableError(f"flows row {cells}: enforced by one of {sorted(ENFORCERS)}")
        for name in (*sources, *targets):
            if name not in found:
                raise TableError(f"flows row {cells}: {name!r} is not in the workloads table")
        for port in ports:
            if not _PORT.match(port):
                raise TableError(f"flows row {cells}: port {port!r} is not like 8080/TCP")
        if not (sources and targets and ports):
            raise TableError(f"flows row {cells}: from, to and ports needed")
        for source in sources:
            for target in targets:
                for port in ports:
                    flows[(source, target, port)] = frozenset(enforcers)
    return FlowTable(found, flows)


# --------------------------------------------------------------------------- selectors


def _matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (``matchLabels`` and ``matchExpressions``); empty selects all."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(str(key)) != str(value):
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = str(expression.get("key")), expression.get("operator")
        values = {str(v) for v in expression.get("values") or []}
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _in_cluster(table: FlowTable) -> list[Workload]:
    return [w for w in table.workloads.values() if not w.address]


def _selected(table: FlowTable, namespace: str, selector: Mapping[str, Any] | None) -> set[str]:
    return {
        w.name
        for w in _in_cluster(table)
        if w.namespace == namespace and _matches(selector, w.label_map)
    }


def _peers(table: FlowTable, own_namespace: str, peer: Mapping[str, Any]) -> tuple[set[str], str]:
    """Workloads a NetworkPolicy peer names, and a problem when it names none."""
    block = peer.get("ipBlock")
    if block is not None:
        cidr = str(block.get("cidr"))
        excepted = frozenset(str(c) for c in block.get("except") or [])
        names = {
            w.name
            for w in table.workloads.values()
            if cidr in w.ip_block[0] and excepted == w.ip_block[1]
        }
        shown = f"ipBlock {cidr}" + (f" except {sorted(excepted)}" if excepted else "")
        return names, "" if names else f"{shown} is no workload's address in the table"
    namespaces = {own_namespace}
    if "namespaceSelector" in peer:
        wanted = (peer.get("namespaceSelector") or {}).get("matchLabels") or {}
        if NAMESPACE_LABEL not in wanted:
            return set(), f"namespaceSelector {wanted} does not name a namespace"
        namespaces = {str(wanted[NAMESPACE_LABEL])}
    names = {
        w.name
        for w in _in_cluster(table)
        if w.namespace in namespaces and _matches(peer.get("podSelector"), w.label_map)
    }
    return names, "" if names else f"peer {dict(peer)} selects no workload of the table"


def _ports(rule: Mapping[str, Any]) -> tuple[list[str], str]:
    ports = rule.get("ports")
    if not ports:
        return [], "a rule without ports (every port)"
    found = []
    for port in ports:
        number = port.get("port")
        if not isinstance(number, int):
            return [], f"port {number!r} is not a number"
        found.append(f"{number}/{port.get('protocol', 'TCP')}")
    return found, ""


# --------------------------------------------------------------------------- the rules


@dataclass(frozen=True)
class Grant:
    flow: Flow
    policy: str
    direction: str  # "ingress" | "egress"


def _network_grants(table: FlowTable, inventory: Inventory) -> tuple[list[Grant], list[str]]:
    grants: list[Grant] = []
    problems: list[str] = []
    for policy in inventory.of_kind("NetworkPolicy"):
        spec = policy.get("spec") or {}
        ns = mesh.namespace(policy)
        where = describe(policy)
        selected = _selected(table, ns, spec.get("podSelector"))
        for direction, peers_key in (("ingress", "from"), ("egress", "to")):
            for index, rule in enumerate(spec.get(direction) or []):
                rule_where = f"{where}: {direction}[{index}]"
                ports, problem = _ports(rule)
                if problem:
                    problems.append(f"{rule_where}: {problem}")
                    continue
                peers: set[str] = set()
                if not rule.get(peers_key):
                    peers = {w.name for w in table.workloads.values() if w.address == ANY_ADDRESS}
                    if not peers:
                        problems.append(f"{rule_where}: any peer, and the table has no address")
                for peer in rule.get(peers_key) or []:
                    names, problem = _peers(table, ns, peer)
                    if problem:
                        problems.append(f"{rule_where}: {problem}")
                    peers |= names
                for own in selected:
                    for other in peers:
                        source, target = (other, own) if direction == "ingress" else (own, other)
                        grants.extend(Grant((source, target, p), where, direction) for p in ports)
    return grants, problems


def _isolated(inventory: Inventory, table: FlowTable, name: str, direction: str) -> bool:
    """Does some NetworkPolicy of its namespace select ``name`` for ``direction``?"""
    workload = table.workloads[name]
    for policy in inventory.of_kind("NetworkPolicy"):
        spec = policy.get("spec") or {}
        if mesh.namespace(policy) != workload.namespace or workload.address:
            continue
        types = spec.get("policyTypes") or ["Ingress"]
        if direction.capitalize() in types and name in _selected(
            table, workload.namespace, spec.get("podSelector")
        ):
            return True
    return False


def _principal_workloads(table: FlowTable, principal: str) -> set[str]:
    prefix = f"{TRUST_DOMAIN}/ns/"
    if not principal.startswith(prefix) or "/sa/" not in principal:
        return set()
    ns, _, account = principal[len(prefix) :].partition("/sa/")
    return {
        w.name for w in _in_cluster(table) if w.namespace == ns and w.service_account == account
    }


def _mesh_grants(table: FlowTable, inventory: Inventory) -> tuple[set[tuple[str, str]], list[str]]:
    pairs: set[tuple[str, str]] = set()
    problems: list[str] = []
    for policy in inventory.of_kind("AuthorizationPolicy"):
        spec = policy.get("spec") or {}
        if spec.get("action", "ALLOW") != "ALLOW" or not spec.get("rules"):
            continue
        ns = mesh.namespace(policy)
        selected = _selected(table, ns, spec.get("selector"))
        if not selected:
            problems.append(f"{describe(policy)}: selects no workload of the table")
        for rule in spec.get("rules") or []:
            for source in rule.get("from") or [{}]:
                principals = (source.get("source") or {}).get("principals") or []
                if not principals:
                    problems.append(f"{describe(policy)}: a rule without principals (anyone)")
                for principal in principals:
                    callers = _principal_workloads(table, str(principal))
                    if not callers:
                        problems.append(
                            f"{describe(policy)}: principal {principal!r} is no workload's "
                            "ServiceAccount in the table"
                        )
                    pairs |= {(caller, own) for caller in callers for own in selected}
    return pairs, problems


# --------------------------------------------------------------------------- existence


def _rendered_pods(inventory: Inventory) -> Iterator[tuple[str, dict[str, str], str, Obj]]:
    """(namespace, pod labels, ServiceAccount, object) of everything that runs pods."""
    for workload in workloads.workloads(inventory.objects):
        spec = workloads.pod_spec(workload)
        yield (
            mesh.namespace(workload),
            workloads.pod_labels(workload),
            str(spec.get("serviceAccountName", "default")),
            workload,
        )
    for cluster in inventory.of_kind("Cluster"):
        name = mesh.name(cluster)
        yield mesh.namespace(cluster), {CNPG_CLUSTER_LABEL: name}, name, cluster


def _namespaces_rendered(inventory: Inventory) -> set[str]:
    return {mesh.name(n) for n in inventory.of_kind("Namespace")}


def _existing(table: FlowTable, inventory: Inventory) -> tuple[set[str], list[str]]:
    """Workloads of the table that exist in this variant; rendered pods not in the table."""
    ours = _namespaces_rendered(inventory)
    pods = list(_rendered_pods(inventory))
    existing: set[str] = set()
    problems: list[str] = []
    for workload in table.workloads.values():
        if workload.address or workload.namespace not in ours:
            existing.add(workload.name)
            continue
        for ns, labels, account, obj in pods:
            if ns == workload.namespace and _matches({"matchLabels": workload.label_map}, labels):
                existing.add(workload.name)
                if account != workload.service_account:
                    problems.append(
                        f"{describe(obj)}: ServiceAccount {account!r}, the flow table says "
                        f"{workload.service_account!r} ({workload.name})"
                    )
    for ns, labels, _account, obj in pods:
        if ns in ours and not any(
            w.namespace == ns and not w.address and _matches({"matchLabels": w.label_map}, labels)
            for w in table.workloads.values()
        ):
            problems.append(f"{describe(obj)}: no workload of the flow table has its pod labels")
    return existing, problems


# --------------------------------------------------------------------------- the check


def _flow_text(flow: Flow) -> str:
    return f"{flow[0]} -> {flow[1]} {flow[2]}"


def policies_follow_the_flow_table(inventory: Inventory) -> list[str]:
    """NetworkPolicies and AuthorizationPolicies allow exactly the README's flows."""
    if inventory.flow_table is None:
        return ["k8s/README.md: no flow table to check the policies against"]
    try:
        table = parse_table(inventory.flow_table)
    except TableError as error:
        return [f"k8s/README.md flow table: {error}"]
    existing, problems = _existing(table, inventory)
    live = {f: e for f, e in table.flows.items() if f[0] in existing and f[1] in existing}

    grants, grant_problems = _network_grants(table, inventory)
    problems += grant_problems
    by_direction: dict[str, set[Flow]] = {"ingress": set(), "egress": set()}
    for grant in grants:
        by_direction[grant.direction].add(grant.flow)
        if grant.flow not in table.flows:
            problems.append(
                f"{grant.policy}: allows {_flow_text(grant.flow)} ({grant.direction}), "
                "which the flow table does not list"
            )
    for flow in sorted(live):
        source, target, _ = flow
        for direction, end in (("egress", source), ("ingress", target)):
            if _isolated(inventory, table, end, direction) and flow not in by_direction[direction]:
                problems.append(
                    f"flow {_flow_text(flow)}: no NetworkPolicy allows its {direction} "
                    f"({end} is isolated for {direction})"
                )

    pairs, mesh_problems = _mesh_grants(table, inventory)
    problems += mesh_problems
    mesh_pairs = {(f[0], f[1]) for f, e in live.items() if "mesh" in e}
    for pair in sorted(pairs - mesh_pairs):
        if pair[0] in existing and pair[1] in existing:
            problems.append(
                f"AuthorizationPolicy allows {pair[0]} -> {pair[1]}, which the flow table "
                "does not list as enforced by the mesh"
            )
    for pair in sorted(mesh_pairs - pairs):
        problems.append(
            f"flow {pair[0]} -> {pair[1]}: enforced by the mesh per the flow table, "
            "but no AuthorizationPolicy allows it"
        )
    return list(dict.fromkeys(problems))
