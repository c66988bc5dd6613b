"""Resolve in-cluster host names and addresses to Services."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from repocheck.k8s import manifests
from repocheck.k8s.manifests import Obj

CLUSTER_DOMAIN = "cluster.local"
DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_PORT = re.compile(r"^(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*):(?P<port>\d+)$")


@dataclass(frozen=True)
class Address:
    host: str
    port: int | None


def service_key(host: str, default_namespace: str) -> tuple[str, str] | None:
    """(namespace, name) that ``host`` means inside the cluster, or None.

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


def find_service(objects: Iterable[Obj], host: str, default_namespace: str) -> Obj | None:
    key = service_key(host, default_namespace)
    if key is None:
        return None
    for obj in objects:
        if (
            manifests.kind(obj) == "Service"
            and (
                manifests.namespace(obj),
                manifests.name(obj),
            )
            == key
        ):
            return obj
    return None


def service_ports(service: Mapping[str, Any]) -> list[int]:
    return [int(p["port"]) for p in (service.get("spec") or {}).get("ports") or [] if "port" in p]


def parse_address(name: str, value: str) -> Address | None:
    """The host and port an env var points at, or None when it is not an address.

    A URL (``http://books.apps:80``; the port defaults by scheme) or, in a
    variable named ``*_ADDR``/``*_ADDRESS``, ``host:port``.
    """
    if "://" in value:
        parts = urlsplit(value)
        if not parts.hostname:
            return None
        return Address(parts.hostname, parts.port or DEFAULT_PORTS.get(parts.scheme))
    match = _HOST_PORT.match(value)
    if match and name.upper().endswith(("_ADDR", "_ADDRESS")):
        return Address(match["host"], int(match["port"]))
    return None
