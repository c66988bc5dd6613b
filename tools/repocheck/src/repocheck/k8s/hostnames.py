"""Resolve in-cluster host names and addresses to Services."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from repomodel import istio as mesh
from repomodel.istio import service_key

from repocheck.k8s.manifests import Obj

DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_PORT = re.compile(r"^(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*):(?P<port>\d+)$")


@dataclass(frozen=True)
class Address:
    host: str
    port: int | None


def find_service(objects: Iterable[Obj], host: str, default_namespace: str) -> Obj | None:
    key = service_key(host, default_namespace)
    if key is None:
        return None
    for obj in objects:
        if (
            mesh.kind(obj) == "Service"
            and (
                mesh.namespace(obj),
                mesh.name(obj),
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
