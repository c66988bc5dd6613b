"""Live reload for ``stack up``: restart the services whose source changed (Tilt's live_update).

Each service started from a workspace console script is mapped to the source
directories it imports: the ``src/`` of the member that provides the script
and of every workspace member it depends on (from the workspace metadata, see
:mod:`devstack.workspace`). ``watchfiles`` (inotify) reports changed ``.py``
files; a burst of saves arrives as one batch (it waits until no file has
changed for ``STEP_MS``, at most ``DEBOUNCE_MS``) and restarts each affected
service once, with one line naming the file and the services.

A change to ``uv.lock`` or a ``pyproject.toml`` changes the environment, which
a restart of one process does not pick up: the stack says once that it needs
a restart (as Tilt falls back to an image rebuild).

The routing file (``k8s/istio``) is not watched here: the local gateway
reloads it itself without a restart (:mod:`devstack.gateway.reload`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from watchfiles import PythonFilter, awatch

from devstack.services import ServiceSpec
from devstack.workspace import METADATA_FILES, Workspace

if TYPE_CHECKING:
    from devstack.supervisor import Stack

# A burst of saves closer together than this is one restart.
STEP_MS = 300
# ... unless saves keep coming for longer than this.
DEBOUNCE_MS = 2000


def script_name(spec: ServiceSpec) -> str:
    return Path(spec.script).name


@dataclass(frozen=True)
class SourceMap:
    """Which source directories each service imports."""

    workspace: Workspace
    services: dict[str, tuple[Path, ...]]

    @classmethod
    def for_specs(cls, workspace: Workspace, specs: Iterable[ServiceSpec]) -> SourceMap:
        services: dict[str, tuple[Path, ...]] = {}
        for spec in specs:
            member = workspace.member_for_script(script_name(spec))
            if member is not None:
                services[spec.name] = tuple(workspace.source_dirs(member))
        return cls(workspace, services)

    @property
    def directories(self) -> list[Path]:
        return sorted({d for dirs in self.services.values() for d in dirs})

    def plan(self, changed: Iterable[Path]) -> dict[str, list[str]]:
        """The services to restart for these changed files, each with the files (relative)."""
        restarts: dict[str, list[str]] = {}
        for path in sorted(set(changed)):
            for service, dirs in self.services.items():
                if any(path.is_relative_to(d) for d in dirs):
                    restarts.setdefault(service, []).append(self.workspace.relative(path))
        return restarts


def run_from_sources(specs: list[ServiceSpec], sources: SourceMap) -> list[ServiceSpec]:
    """Each workspace service imports its code from the workspace's ``src/`` directories.

    ``PYTHONPATH`` comes before the virtual environment's editable installs, so
    a copy of the repository (or another checkout) run with this environment
    runs, and reloads, its own sources.
    """
    inherited = os.environ.get("PYTHONPATH")
    result: list[ServiceSpec] = []
    for spec in specs:
        dirs = sources.services.get(spec.name)
        if not dirs:
            result.append(spec)
            continue
        path = os.pathsep.join([*(str(d) for d in dirs), *([inherited] if inherited else [])])
        result.append(replace(spec, env={**spec.env, "PYTHONPATH": path}))
    return result


def describe(files: list[str]) -> str:
    more = len(files) - 1
    return files[0] + (f" (and {more} more file{'s' if more > 1 else ''})" if more else "")


class Reloader:
    """Watches the sources and the metadata while the stack runs (``Stack(reloader=...)``)."""

    def __init__(self, sources: SourceMap) -> None:
        self.sources = sources

    async def __call__(self, stack: Stack) -> None:
        await asyncio.gather(self.watch_sources(stack), self.watch_metadata(stack))

    async def watch_sources(self, stack: Stack) -> None:
        directories = self.sources.directories
        if not directories:
            return
        try:
            async for changes in awatch(
                *directories,
                watch_filter=PythonFilter(),
                step=STEP_MS,
                debounce=DEBOUNCE_MS,
                stop_event=stack.stopping,
            ):
                plan = self.sources.plan(Path(path) for _, path in changes)
                by_files: dict[tuple[str, ...], list[str]] = {}
                for service, files in plan.items():
                    by_files.setdefault(tuple(files), []).append(service)
                for changed, services in by_files.items():
                    stack.output.stack(
                        f"{describe(list(changed))} changed: restarting {', '.join(services)}"
                    )
                stack.restart_for_edit(plan)
        except (OSError, RuntimeError) as error:
            stack.output.stack(f"cannot watch the sources ({error}); live reload is off")

    async def watch_metadata(self, stack: Stack) -> None:
        def is_metadata(_: object, path: str) -> bool:
            return Path(path).name in METADATA_FILES

        try:
            async for changes in awatch(
                *self.sources.workspace.metadata_dirs(),
                watch_filter=is_metadata,
                recursive=False,
                step=STEP_MS,
                debounce=DEBOUNCE_MS,
                stop_event=stack.stopping,
            ):
                files = sorted(self.sources.workspace.relative(path) for _, path in changes)
                stack.output.stack(
                    f"{describe(files)} changed: dependencies are not live-reloaded; "
                    "restart the stack (Ctrl-C, then uv run stack up) to use them"
                )
                return  # said once
        except (OSError, RuntimeError) as error:
            stack.output.stack(f"cannot watch {METADATA_FILES} ({error})")
