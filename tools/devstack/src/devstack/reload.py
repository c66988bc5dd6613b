"""Live reload for ``stack up``: restart the services whose source changed (Tilt's live_update).

Each service started from a workspace console script is mapped to the source
directories it imports: the ``src/`` of the member that provides the script
and of every workspace member it depends on (from the workspace metadata, see
:mod:`repomodel.workspace`). ``watchfiles`` (inotify) reports changed ``.py``
files; a burst of saves is one batch (:mod:`devstack.watching` waits until no file has
changed for ``STEP_MS``, at most ``DEBOUNCE_MS``) and restarts each affected
service once, with one line naming the file and the services.

A change to ``uv.lock`` or a ``pyproject.toml`` changes the environment, which
a restart of one process does not pick up: the stack says once that it needs
a restart (as Tilt falls back to an image rebuild).

A ``.proto`` change regenerates the gRPC package (``protos/generate.py``, as
Tilt's ``protos-codegen`` resource does); the regenerated files then restart
the services that import them like any other edit.

The routing files (``k8s/istio``) are the running gateway's to reload
(:mod:`devstack.gateway.reload`); they are watched here only to start a
gateway that refused them when it was last (re)started, once they are fixed.

The stack runner does not reload itself: an edit to a module it has imported
(most of ``tools/devstack``) is named, with a word that the stack needs a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from repomodel.workspace import METADATA_FILES, Workspace
from watchfiles import Change, PythonFilter

from devstack.services import GATEWAY, ServiceSpec
from devstack.watching import FileChange, watch_batches

if TYPE_CHECKING:
    from devstack.supervisor import Stack

# A burst of saves closer together than this is one restart.
STEP_MS = 300
# ... unless saves keep coming for longer than this (then one restart per this long).
DEBOUNCE_MS = 10_000
GENERATOR = Path("protos/generate.py")


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


def runner_files() -> set[Path]:
    """The source files of the modules this process (the stack runner) has imported."""
    files: set[Path] = set()
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if name:
            with contextlib.suppress(OSError, ValueError):
                files.add(Path(name).resolve())
    return files


class Reloader:
    """Watches the sources and the metadata while the stack runs (``Stack(reloader=...)``)."""

    def __init__(self, sources: SourceMap, istio_dir: Path | None = None) -> None:
        self.sources = sources
        self.istio_dir = istio_dir

    async def __call__(self, stack: Stack) -> None:
        await asyncio.gather(
            self.watch_sources(stack),
            self.watch_metadata(stack),
            self.watch_protos(stack),
            self.watch_routes(stack),
        )

    def runner_changed(self, stack: Stack, changed: Iterable[Path]) -> None:
        ours = runner_files()
        mine = sorted(self.sources.workspace.relative(p) for p in changed if p.resolve() in ours)
        if mine:
            stack.output.stack(
                f"{describe(mine)} is the stack runner's own code, which is not reloaded: "
                "restart the stack (Ctrl-C, then uv run stack up) to use it"
            )

    async def watch_protos(self, stack: Stack) -> None:
        """A saved ``.proto``: regenerate the gRPC package (its files then reload as edits)."""
        generator = self.sources.workspace.root / GENERATOR
        if not generator.is_file():
            return

        def is_proto(_: object, path: str) -> bool:
            return path.endswith(".proto")

        async def regenerate(changes: set[FileChange]) -> None:
            files = sorted(self.sources.workspace.relative(path) for _, path in changes)
            stack.output.stack(f"{describe(files)} changed: regenerating the gRPC code")
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(generator),
                cwd=self.sources.workspace.root,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await process.communicate()
            if process.returncode != 0:
                stack.output.stack(
                    f"protos/generate.py failed ({process.returncode}); the services keep "
                    "the code they have:"
                )
                for line in out.decode(errors="replace").splitlines()[-15:]:
                    stack.output.stack(f"  {line}")

        await _watch(stack, [generator.parent], is_proto, regenerate, "the .proto files")

    async def watch_routes(self, stack: Stack) -> None:
        """A routing file saved while the gateway waits for a save (it refused them): start it."""
        if self.istio_dir is None or not self.istio_dir.is_dir():
            return

        def is_yaml(_: object, path: str) -> bool:
            return path.endswith((".yaml", ".yml"))

        async def start_gateway(changes: set[FileChange]) -> None:
            files = sorted(str(Path(path).name) for _, path in changes)
            if stack.restart_if_broken(GATEWAY, f"routing file {describe(files)}"):
                stack.output.stack(
                    f"{describe(files)} changed: starting {GATEWAY} again with the routes"
                )

        await _watch(stack, [self.istio_dir], is_yaml, start_gateway, str(self.istio_dir))

    async def watch_sources(self, stack: Stack) -> None:
        directories = self.sources.directories
        if not directories:
            return

        async def restart(changes: set[FileChange]) -> None:
            paths = [Path(path) for _, path in changes]
            plan = self.sources.plan(paths)
            self.runner_changed(stack, paths)
            by_files: dict[tuple[str, ...], list[str]] = {}
            for service, files in plan.items():
                by_files.setdefault(tuple(files), []).append(service)
            for changed, services in by_files.items():
                stack.output.stack(
                    f"{describe(list(changed))} changed: restarting {', '.join(services)}"
                )
            stack.restart_for_edit(plan)

        await _watch(
            stack, directories, PythonFilter(), restart, "the sources", "; live reload is off"
        )

    async def watch_metadata(self, stack: Stack) -> None:
        def is_metadata(_: object, path: str) -> bool:
            return Path(path).name in METADATA_FILES

        async def say_once(changes: set[FileChange]) -> bool:
            files = sorted(self.sources.workspace.relative(path) for _, path in changes)
            stack.output.stack(
                f"{describe(files)} changed: dependencies are not live-reloaded; "
                "restart the stack (Ctrl-C, then uv run stack up) to use them"
            )
            return True  # said once

        await _watch(
            stack,
            self.sources.workspace.metadata_dirs(),
            is_metadata,
            say_once,
            str(METADATA_FILES),
            recursive=False,
        )


async def _watch(
    stack: Stack,
    directories: Sequence[Path],
    watch_filter: Callable[[Change, str], bool],
    on_changes: Callable[[set[FileChange]], Awaitable[bool | None]],
    what: str,
    then: str = "",
    *,
    recursive: bool = True,
) -> None:
    """``on_changes(batch)`` for each batch of changes under ``directories`` until the stack
    stops or it returns True (done); a watch that fails, or fails to act, is one line:
    ``cannot watch {what} ({error}){then}``."""
    try:
        async for changes in watch_batches(
            *directories,
            watch_filter=watch_filter,
            stop=stack.stopping,
            quiet_ms=STEP_MS,
            longest_ms=DEBOUNCE_MS,
            recursive=recursive,
        ):
            if await on_changes(changes):
                return
    except (OSError, RuntimeError) as error:
        stack.output.stack(f"cannot watch {what} ({error}){then}")
