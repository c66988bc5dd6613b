"""Strict schema validation of every object: core kinds and custom resources.

Core Kubernetes kinds validate with ``kubernetes-validate`` in strict mode (an
unknown field is an error). Custom resources validate against the JSON schemas
of the public CRDs catalogue (datreeio/CRDs-catalog), laid out as
``{group}/{kind}_{version}.json``; the location is ``$CRD_SCHEMA_LOCATION``
(a directory or a URL), by default the catalogue's public address. CI has no
network and points it at ``../shared/crd-schemas``.

A kind with no schema is a failure, never a skip: an object nothing can check
is an object nobody checked.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
from repomodel.istio import describe, kind

from repocheck.k8s.manifests import Obj, group

CRD_SCHEMA_ENV = "CRD_SCHEMA_LOCATION"
DEFAULT_CRD_SCHEMA_LOCATION = "https://raw.githubusercontent.com/datreeio/CRDs-catalog/main"

# Validate against the Kubernetes the cluster runs: k8s/kind/cluster.yaml pins a
# 1.33 node image (scripts/cluster-up requires kind >= 0.29, which runs it). A
# field newer than that would be rejected by such a cluster.
KUBERNETES_VERSION = "1.33.0"

# API groups served by Kubernetes itself (kubernetes-validate's domain). Any
# other group, including *.k8s.io groups installed as CRDs such as the Gateway
# API, is a custom resource.
CORE_GROUPS = frozenset(
    {
        "",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "apps",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "autoscaling",
        "batch",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "resource.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
    }
)


def crd_schema_location() -> str:
    return os.environ.get(CRD_SCHEMA_ENV) or DEFAULT_CRD_SCHEMA_LOCATION


class CrdSchemas:
    """JSON schemas of custom resources, read once each from a directory or URL."""

    def __init__(self, location: str | None = None, timeout_s: float = 10.0) -> None:
        self.location = (location or crd_schema_location()).rstrip("/")
        self._timeout_s = timeout_s
        self._cache: dict[str, Mapping[str, Any] | str] = {}

    def address(self, obj: Mapping[str, Any]) -> str:
        version = str(obj.get("apiVersion", "")).rpartition("/")[2]
        return f"{self.location}/{group(obj)}/{kind(obj).lower()}_{version}.json"

    def schema(self, obj: Mapping[str, Any]) -> Mapping[str, Any] | str:
        """The schema for ``obj``'s kind and version, or why there is none."""
        address = self.address(obj)
        if address not in self._cache:
            self._cache[address] = self._fetch(address)
        return self._cache[address]

    def _fetch(self, address: str) -> Mapping[str, Any] | str:
        try:
            if address.startswith(("http://", "https://")):
                with urllib.request.urlopen(address, timeout=self._timeout_s) as response:
                    text = response.read().decode()
            else:
                text = Path(address).read_text()
        except (OSError, urllib.error.URLError) as error:
            return f"no schema at {address} ({error}); set {CRD_SCHEMA_ENV}"
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as error:
            return f"schema {address} is not JSON ({error})"
        if not isinstance(loaded, dict):
            return f"schema {address} is not a JSON object"
        return loaded


def validate_core(obj: Obj, version: str = KUBERNETES_VERSION) -> list[str]:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [
            f"{describe(obj)}: no Kubernetes {version} schema for "
            f"{obj.get('apiVersion')} {kind(obj)} (unknown kind or removed API)"
        ]
    except kubernetes_validate.ValidationError as error:
        # A jsonschema.ValidationError carrying the first violation.
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return [f"{describe(obj)}: {where}: {error.message}"]
    return []


def validate_custom(obj: Obj, schemas: CrdSchemas) -> list[str]:
    schema = schemas.schema(obj)
    if isinstance(schema, str):
        return [f"{describe(obj)}: {schema}"]
    validator_class = jsonschema.validators.validator_for(schema, jsonschema.Draft7Validator)
    errors = sorted(validator_class(schema).iter_errors(obj), key=lambda e: list(e.path))
    return [
        f"{describe(obj)}: {'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in errors
    ]


def validate(objects: Iterable[Obj], schemas: CrdSchemas | None = None) -> list[str]:
    """Every schema violation among ``objects`` (empty when all are valid)."""
    schemas = schemas or CrdSchemas()
    problems: list[str] = []
    for obj in objects:
        if not obj.get("apiVersion") or not kind(obj):
            problems.append(f"{describe(obj) or obj!r}: no apiVersion or kind")
        elif group(obj) in CORE_GROUPS:
            problems.extend(validate_core(obj))
        else:
            problems.extend(validate_custom(obj, schemas))
    return problems
