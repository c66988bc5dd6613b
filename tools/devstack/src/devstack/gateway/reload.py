"""Follow edits to the Istio directory while serving (``GATEWAY_RELOAD``, on by default).

When a ``*.yaml``/``*.yml`` file under ``GATEWAY_ISTIO_DIR`` changes (watched
with ``watchfiles``; a burst of writes is one reload, see :mod:`devstack.watching`),
the whole directory is read again. New requests get the new routes; a request
already in flight keeps the route it matched, its destinations' addresses and
the outlier state.
An edit that does not parse, or that uses a field the gateway cannot apply,
keeps the previous routes and logs one line naming the file and the field.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from repomodel.istio import YAML_SUFFIXES, DocumentError, describe, parse_documents, yaml_files

from devstack.gateway.istio import GatewayConfig, IstioConfigError, load_gateway_config
from devstack.gateway.proxy import Proxy
from devstack.gateway.server import MissingUpstreamError, resolve_upstreams
from devstack.gateway.settings import GatewaySettings
from devstack.watching import watch_batches

log = logging.getLogger("devstack.gateway")
# Its INFO line per batch ("1 change detected") says less than ours.
logging.getLogger("watchfiles").setLevel(logging.WARNING)

# Writes closer together than this are one reload (watchfiles hands over a group
# every 50-100 ms during a burst), unless they go on for longer than DEBOUNCE_MS.
QUIET_MS = 150
DEBOUNCE_MS = 1000


def is_istio_file(_: object, path: str) -> bool:
    return path.endswith(YAML_SUFFIXES)


class RouteReloader:
    def __init__(self, proxy: Proxy, settings: GatewaySettings, warnings: list[str]) -> None:
        self.proxy = proxy
        self.settings = settings
        self.warnings = set(warnings)  # already logged

    async def watch(self, stop: asyncio.Event) -> None:
        directory = self.settings.istio_dir
        try:
            async for changes in watch_batches(
                directory,
                watch_filter=is_istio_file,
                stop=stop,
                quiet_ms=QUIET_MS,
                longest_ms=DEBOUNCE_MS,
            ):
                self.reload(sorted({path for _, path in changes}))
        except (OSError, RuntimeError) as error:
            log.error(
                "cannot watch the Istio directory: routes will not be reloaded",
                extra={"istio_dir": str(directory), "error": str(error)},
            )

    def reload(self, changed: list[str]) -> bool:
        """Read the directory again; apply it, or keep the previous routes and say why."""
        settings = self.settings
        try:
            config = load_gateway_config(settings.istio_dir, settings.gateway_name)
            upstreams = resolve_upstreams(config, settings.upstreams)
        except IstioConfigError as error:
            self._refuse(changed, error.problems)
            return False
        except MissingUpstreamError as error:
            self._refuse(changed, [str(error)])
            return False
        self.proxy.use_routes(config.table, upstreams, config.outlier)
        for warning in config.warnings:
            if warning not in self.warnings:
                log.warning(warning)
        self.warnings = set(config.warnings)
        log.info(
            "routes reloaded",
            extra={"files": [self._relative(p) for p in changed], "routes": summary(config)},
        )
        return True

    def _refuse(self, changed: list[str], problems: list[str]) -> None:
        owners = resource_files(self.settings.istio_dir)
        files: list[str] = []
        for problem in problems:
            file = locate(problem, owners) or (changed[0] if len(changed) == 1 else None)
            name = self._relative(file) if file else str(self.settings.istio_dir)
            if name not in files:
                files.append(name)
        log.warning(
            "routes not reloaded, keeping the previous ones",
            extra={"file": ", ".join(files), "problem": "; ".join(map(_one_line, problems))},
        )

    def _relative(self, path: str) -> str:
        try:
            return str(Path(path).resolve().relative_to(Path.cwd()))
        except ValueError:
            return str(path)


def summary(config: GatewayConfig) -> dict[str, dict[str, int]]:
    """``{route name: {destination: weight}}``: what a reload changed, at a glance."""
    return {
        route.name: {d.destination.key: d.weight for d in route.destinations}
        for route in config.table.routes
    }


def resource_files(directory: Path) -> dict[str, str]:
    """``"VirtualService apps/name"`` -> the file that declares it (files that parse)."""
    owners: dict[str, str] = {}
    for path in yaml_files(directory):
        try:
            documents = parse_documents(path.read_text(), source=str(path))
        except (OSError, DocumentError):
            continue
        for doc in documents:
            if doc.get("kind"):
                owners[describe(doc, "?")] = str(path)
    return owners


def locate(problem: str, owners: dict[str, str]) -> str | None:
    """The file a problem is about: the path a YAML error names, or the resource's file."""
    for resource in sorted(owners, key=len, reverse=True):
        if problem.startswith((resource + ".", resource + ":", resource + " ")):
            return owners[resource]
    head = problem.split(":", 1)[0]
    return head if head.endswith((".yaml", ".yml")) else None


def _one_line(text: str) -> str:
    return " ".join(text.split())
