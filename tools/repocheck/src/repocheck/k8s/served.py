"""Cross-checks that ask the applications: settings, probe paths, mesh paths."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from repomodel import istio as mesh
from repomodel.istio import describe

from repocheck.k8s import apps, workloads
from repocheck.k8s.hostnames import find_service
from repocheck.k8s.inventory import Inventory
from repocheck.k8s.istio import http_destinations
from repocheck.k8s.manifests import Obj

PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


FILE_SUFFIX = "_FILE"


@functools.cache
def _placeholder_file() -> str:
    """A file standing in for a mounted secret: the checks never read a real one."""
    directory = tempfile.mkdtemp(prefix="repocheck-mounted-")
    atexit.register(shutil.rmtree, directory, True)
    path = Path(directory) / "mounted"
    path.write_text("placeholder")
    return str(path)


def _mount_of(container: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
    """The container's volumeMount ``path`` lies under, if any."""
    for mount in container.get("volumeMounts") or []:
        base = str(mount.get("mountPath", "")).rstrip("/")
        if base and path.startswith(base + "/"):
            return dict(mount)
    return None


def literal_env(container: Mapping[str, Any]) -> dict[str, str]:
    """The env vars a container gets as plain values (downward-API ones left out).

    A ``*_FILE`` variable naming a file under one of the container's volume
    mounts (a Secret mounted as a file) points at a placeholder file instead,
    so the service's loader can read it here; ``mounted_files_exist`` checks
    the mount itself.
    """
    env = {
        str(v["name"]): str(v["value"])
        for v in container.get("env") or []
        if isinstance(v.get("value"), str)
    }
    for name, value in env.items():
        if name.endswith(FILE_SUFFIX) and _mount_of(container, value) is not None:
            env[name] = _placeholder_file()
    return env


def _mounted_file_problems(workload: Obj, container: Mapping[str, Any]) -> list[str]:
    """Each ``*_FILE`` path is a key of a Secret or ConfigMap volume the container mounts."""
    volumes = {str(v.get("name")): v for v in workloads.pod_spec(workload).get("volumes") or []}
    problems: list[str] = []
    for var in container.get("env") or []:
        name, value = str(var.get("name")), var.get("value")
        if not name.endswith(FILE_SUFFIX) or not isinstance(value, str):
            continue
        where = f"{_where(workload, container)}: {name}={value!r}"
        mount = _mount_of(container, value)
        source = volumes.get(str((mount or {}).get("name")), {})
        backing = source.get("secret") or source.get("configMap")
        if mount is None or backing is None:
            problems.append(f"{where} is not under a mounted Secret or ConfigMap volume")
            continue
        key = value[len(str(mount["mountPath"]).rstrip("/")) + 1 :]
        items = [str(i.get("path")) for i in backing.get("items") or []]
        if items and key not in items:
            problems.append(f"{where}: the volume {mount['name']!r} has no item {key!r}")
    return problems


@functools.lru_cache(maxsize=64)
def _routes(package: str, environ: frozenset[tuple[str, str]]) -> tuple[apps.Route, ...] | None:
    routes = apps.served_routes(package, dict(environ))
    return None if routes is None else tuple(routes)


def container_routes(container: Mapping[str, Any]) -> list[apps.Route] | None:
    """Routes the container's app serves with the container's settings (None: not HTTP)."""
    package = apps.package_for(str(container.get("image", "")))
    if package is None:
        return None
    try:
        routes = _routes(package, frozenset(literal_env(container).items()))
    except apps.SettingsError:
        return None  # reported by app_settings_accept_env
    return None if routes is None else list(routes)


def _containers(inventory: Inventory) -> Iterator[tuple[Obj, Mapping[str, Any]]]:
    for workload in workloads.workloads(inventory.objects):
        for container in workloads.containers(workload):
            yield workload, container


def _where(workload: Obj, container: Mapping[str, Any]) -> str:
    return f"{describe(workload)} container {container.get('name')}"


def app_settings_accept_env(inventory: Inventory) -> list[str]:
    """Each service accepts the settings its container's env gives it (its own loader)."""
    problems: list[str] = []
    for workload, container in _containers(inventory):
        package = apps.package_for(str(container.get("image", "")))
        if package is None:
            continue
        problems.extend(_mounted_file_problems(workload, container))
        try:
            apps.load_settings(package, literal_env(container))
        except apps.SettingsError as error:
            problems.append(f"{_where(workload, container)}: {error}")
    return problems


def probe_paths_are_served(inventory: Inventory) -> list[str]:
    """Probe ports are container ports; HTTP probe paths are routes the app serves."""
    problems: list[str] = []
    for workload, container in _containers(inventory):
        ports = workloads.container_ports(container)
        for probe_name in PROBES:
            probe = container.get(probe_name)
            if not probe:
                continue
            where = f"{_where(workload, container)} {probe_name}"
            handler = probe.get("httpGet") or probe.get("grpc") or probe.get("tcpSocket") or {}
            if "port" in handler and not workloads.port_matches(handler["port"], ports):
                problems.append(f"{where}: port {handler['port']!r} is not a container port")
            if "httpGet" not in probe:
                continue
            path = str(probe["httpGet"].get("path", "/"))
            routes = container_routes(container)
            if routes is None:
                problems.append(
                    f"{where}: GET {path}: cannot ask the app (image {container.get('image')!r} "
                    "has no known HTTP app, or its settings are invalid)"
                )
            elif not apps.serves(routes, path):
                problems.append(f"{where}: GET {path} is not a route the app serves")
    return problems


def _workload_routes(
    inventory: Inventory, selector: Mapping[str, Any], ns: str
) -> list[apps.Route] | None:
    """Routes of the workloads ``selector`` picks in ``ns``; None when none is an HTTP app."""
    found: list[apps.Route] | None = None
    for workload in workloads.selected(inventory.objects, selector, ns):
        for container in workloads.containers(workload):
            routes = container_routes(container)
            if routes is not None:
                found = [*(found or []), *routes]
    return found


def _prefix_served(routes: list[apps.Route], prefix: str, methods: set[str] | None = None) -> bool:
    return any(
        r.template.startswith(prefix) and (methods is None or methods & r.methods) for r in routes
    )


def mesh_paths_are_served(inventory: Inventory) -> list[str]:
    """The paths the mesh routes and authorizes are paths the apps serve.

    VirtualService uri matches (exact or prefix) against every destination's
    app; AuthorizationPolicy operation paths (exact, ``prefix*``) and methods
    against the selected workloads' apps. gRPC-only workloads are skipped.
    """
    problems: list[str] = []
    for vs in inventory.of_kind("VirtualService"):
        ns = mesh.namespace(vs)
        rules = (vs.get("spec") or {}).get("http") or []
        for index, destination in http_destinations(vs):
            service = find_service(inventory.everything, str(destination.get("host", "")), ns)
            if service is None:
                continue
            routes = _workload_routes(
                inventory,
                (service.get("spec") or {}).get("selector") or {},
                mesh.namespace(service),
            )
            if routes is None:
                continue
            for match in rules[index].get("match") or []:
                uri = match.get("uri") or {}
                where = f"{describe(vs)}: http[{index}] uri {uri} to {describe(service)}"
                if "exact" in uri and not any(
                    apps.serves(routes, str(uri["exact"]), m) for m in ("GET", "POST", "PUT")
                ):
                    problems.append(f"{where}: no such route in the app")
                if "prefix" in uri and not _prefix_served(routes, str(uri["prefix"])):
                    problems.append(f"{where}: no route of the app starts with it")
    for policy in inventory.of_kind("AuthorizationPolicy"):
        spec = policy.get("spec") or {}
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        routes = _workload_routes(inventory, selector, mesh.namespace(policy)) if selector else None
        if routes is None:
            continue
        for rule in spec.get("rules") or []:
            for to in rule.get("to") or []:
                operation = to.get("operation") or {}
                methods = {str(m) for m in operation.get("methods") or []} or None
                for raw_path in operation.get("paths") or []:
                    path = str(raw_path)
                    served = (
                        _prefix_served(routes, path[:-1], methods)
                        if path.endswith("*")
                        else any(apps.serves(routes, path, m) for m in methods or {"GET"})
                    )
                    if not served:
                        problems.append(
                            f"{describe(policy)}: allows {sorted(methods or [])} {path}, which the "
                            "selected app does not serve"
                        )
    return problems
