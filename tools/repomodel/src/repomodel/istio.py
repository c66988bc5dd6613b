"""The Istio resources as both of their readers see them (pure: text in, model out).

Two tools read the Istio files of ``k8s/``: the local gateway (devstack), which
routes by them, and the static checks (repocheck), which check them against the
rest of the cluster. What they must agree on is written here once:

- the YAML documents of a directory or of a rendered stream;
- how an object is named in messages (``VirtualService apps/books``);
- what a host name means: Istio expands a short host with the namespace of the
  resource; in-cluster DNS resolves ``books``, ``books.apps``, ``books.apps.svc``
  and ``books.apps.svc.cluster.local`` to the Service apps/books;
- which Gateway is the ingress gateway, and which Gateways a VirtualService is
  bound to (no ``gateways`` means the mesh only).

A namespace is a string; ``""`` means none (a reference or an object without one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

Document = dict[str, Any]
_M = TypeVar("_M", bound=Mapping[str, Any])

MESH = "mesh"  # the gateways entry that means the sidecars, not a Gateway
INGRESS_SELECTOR = {"istio": "ingressgateway"}
CLUSTER_DOMAIN = "cluster.local"
YAML_SUFFIXES = (".yaml", ".yml")


class DocumentError(ValueError):
    """YAML that cannot be read; the message names the file (or the source) and why."""


# --- documents --------------------------------------------------------------


def yaml_files(directory: Path) -> list[Path]:
    """Every ``*.yaml``/``*.yml`` file under ``directory``, in a stable order."""
    return sorted(p for p in directory.rglob("*") if p.suffix in YAML_SUFFIXES)


def parse_documents(text: str, *, source: str) -> list[Document]:
    """The mappings of a YAML stream (empty and scalar documents left out)."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        raise DocumentError(f"{source}: not valid YAML: {error}") from None
    return [d for d in documents if isinstance(d, dict)]


def load_documents(directory: Path) -> list[Document]:
    """The documents of every YAML file under ``directory``, file by file."""
    if not directory.is_dir():
        raise DocumentError(f"Istio directory {directory} does not exist")
    return [
        document
        for path in yaml_files(directory)
        for document in parse_documents(path.read_text(), source=str(path))
    ]


# --- names ------------------------------------------------------------------


def kind(obj: Mapping[str, Any]) -> str:
    return str(obj.get("kind", ""))


def name(obj: Mapping[str, Any], unnamed: str = "") -> str:
    return str((obj.get("metadata") or {}).get("name", unnamed))


def namespace(obj: Mapping[str, Any], default: str = "") -> str:
    return str((obj.get("metadata") or {}).get("namespace") or default)


def of_kind(objects: Iterable[_M], *kinds: str) -> list[_M]:
    return [o for o in objects if kind(o) in kinds]


def qualified_name(obj: Mapping[str, Any], unnamed: str = "") -> str:
    """``apps/books``, or ``books`` for an object without a namespace."""
    ns = namespace(obj)
    return f"{ns}/{name(obj, unnamed)}" if ns else name(obj, unnamed)


def describe(obj: Mapping[str, Any], unnamed: str = "") -> str:
    """How messages name an object: ``VirtualService apps/books``."""
    return f"{kind(obj)} {qualified_name(obj, unnamed)}"


# --- hosts ------------------------------------------------------------------


def short_host(host: str) -> str:
    """``text-to-speech.apps.svc.cluster.local`` -> ``text-to-speech``."""
    return str(host).split(".", 1)[0]


def fqdn(host: str, namespace: str) -> str:
    """Istio expands a short host name with the resource's namespace (when it has one)."""
    host = host.lower()
    if host.startswith("*") or "." in host or not namespace:
        return host
    return f"{host}.{namespace}.svc.{CLUSTER_DOMAIN}"


def service_key(host: str, default_namespace: str) -> tuple[str, str] | None:
    """(namespace, name) of the Service ``host`` means inside the cluster, or None.

    ``books`` (in the caller's namespace), ``books.apps``, ``books.apps.svc``
    and ``books.apps.svc.cluster.local`` all name Service apps/books.
    """
    labels = host.lower().rstrip(".").split(".")
    suffix = labels[2:]
    if len(labels) == 1:
        return (default_namespace, labels[0])
    if len(labels) == 2:
        return (labels[1], labels[0])
    if suffix in (["svc"], ["svc", *CLUSTER_DOMAIN.split(".")]):
        return (labels[1], labels[0])
    return None


# --- gateways ---------------------------------------------------------------


def ingress_gateways(documents: Iterable[Mapping[str, Any]], wanted: str | None) -> list[str]:
    """Qualified names of the Gateways named ``wanted`` (``ns/name`` or ``name``), or,
    without ``wanted``, of those selecting the ingress gateway (``istio: ingressgateway``)."""
    names: list[str] = []
    for doc in documents:
        if kind(doc) != "Gateway":
            continue
        qualified = qualified_name(doc, "?")
        if wanted is not None:
            if wanted in {qualified, qualified.rsplit("/", 1)[-1]}:
                names.append(qualified)
            continue
        selector = (doc.get("spec") or {}).get("selector") or {}
        if all(selector.get(k) == v for k, v in INGRESS_SELECTOR.items()):
            names.append(qualified)
    return names


def bound_gateways(vs: Mapping[str, Any]) -> list[str]:
    """What a VirtualService applies to; no ``gateways`` means the mesh only."""
    return [str(g) for g in (vs.get("spec") or {}).get("gateways") or [MESH]]


def gateway_key(reference: str, default_namespace: str) -> tuple[str, str]:
    """``namespace/name`` or ``name`` (in ``default_namespace``) -> (namespace, name)."""
    ns, _, gateway = reference.rpartition("/")
    return (ns or default_namespace, gateway)


def gateway_references(references: Iterable[Any], namespace: str) -> list[tuple[str, str]]:
    """The Gateways a ``gateways:`` list names, as (namespace, name); ``mesh`` left out.

    A bare name is a Gateway of ``namespace`` (the VirtualService's).
    """
    return [gateway_key(str(r), namespace) for r in references if str(r) != MESH]


def binds(references: Iterable[Any], namespace: str, gateways: Iterable[str]) -> bool:
    """Does a ``gateways:`` list name one of ``gateways`` (qualified names)?

    A side without a namespace (a reference outside any resource, a Gateway
    named without one) matches a Gateway of that name in any namespace.
    """
    wanted = [gateway_key(g, "") for g in gateways]
    return any(
        ref_name == gw_name and (not gw_ns or not ref_ns or ref_ns == gw_ns)
        for ref_ns, ref_name in gateway_references(references, namespace)
        for gw_ns, gw_name in wanted
    )
