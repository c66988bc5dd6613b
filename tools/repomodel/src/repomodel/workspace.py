"""The uv workspace: where its root is, its members, their sources and what each one imports.

The one reading of the workspace for the tools that run from a checkout.
:func:`find_workspace_root` finds the root above a directory (the stack, the
test harness and the static checks find the repository's files from it).
:func:`load_workspace` reads the workspace's own metadata (the root
``[tool.uv.workspace]`` members, each member's ``[project]`` dependencies and
scripts), so a new member or dependency needs no change here. The stack uses it to

- run every service from the sources of the workspace it was started in
  (``PYTHONPATH`` lists each member's ``src/``, ahead of the editable installs
  of the virtual environment, so a copy of the repository runs its own code);
- know which source directories a service imports (its own member and the
  workspace members it depends on, transitively), to restart it when one changes.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
# Files that change the installed environment: not reloaded, a stack restart is needed.
METADATA_FILES = ("pyproject.toml", "uv.lock")


def normalize(name: str) -> str:
    """PEP 503 name: ``Tts_Protos`` -> ``tts-protos``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Member:
    name: str
    path: Path  # resolved
    folder: str  # relative to the workspace root, as its members pattern names it
    dependencies: frozenset[str]  # normalized names, workspace members or not
    scripts: frozenset[str]

    @property
    def source_dir(self) -> Path:
        return self.path / "src"


@dataclass(frozen=True)
class Workspace:
    root: Path
    members: dict[str, Member]

    def member_for_script(self, script: str) -> Member | None:
        """The member whose ``[project.scripts]`` provides the console script ``script``."""
        for member in self.members.values():
            if script in member.scripts:
                return member
        return None

    def closure(self, member: Member) -> list[Member]:
        """The member and every workspace member it depends on, transitively."""
        seen: dict[str, Member] = {}
        pending = [member]
        while pending:
            current = pending.pop()
            if current.name in seen:
                continue
            seen[current.name] = current
            pending.extend(self.members[d] for d in current.dependencies if d in self.members)
        return sorted(seen.values(), key=lambda m: m.name)

    def source_dirs(self, member: Member) -> list[Path]:
        return [m.source_dir for m in self.closure(member) if m.source_dir.is_dir()]

    def metadata_dirs(self) -> list[Path]:
        """Where ``pyproject.toml`` / ``uv.lock`` files live: the root and every member."""
        return [self.root, *(m.path for m in self.members.values())]

    def relative(self, path: Path | str) -> str:
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return str(path)


def load_workspace(root: Path) -> Workspace:
    config = read_toml(root / "pyproject.toml").get("tool", {}).get("uv", {}).get("workspace", {})
    excluded = {p.resolve() for pattern in config.get("exclude", []) for p in root.glob(pattern)}
    members: dict[str, Member] = {}
    for pattern in config.get("members", []):
        for path in sorted(root.glob(pattern)):
            pyproject = path / "pyproject.toml"
            if path.resolve() in excluded or not pyproject.is_file():
                continue
            project = read_toml(pyproject).get("project", {})
            if "name" not in project:
                continue
            name = normalize(str(project["name"]))
            members[name] = Member(
                name=name,
                path=path.resolve(),
                folder=path.relative_to(root).as_posix(),
                dependencies=frozenset(_requirement_names(project.get("dependencies", []))),
                scripts=frozenset(project.get("scripts", {})),
            )
    return Workspace(root.resolve(), members)


def _requirement_names(requirements: list[str]) -> list[str]:
    names: list[str] = []
    for requirement in requirements:
        found = _NAME.match(str(requirement))
        if found:
            names.append(normalize(found.group(1)))
    return names


def find_workspace_root(start: Path) -> Path | None:
    """The nearest directory at or above ``start`` whose pyproject.toml declares a uv workspace."""
    for directory in (start.resolve(), *start.resolve().parents):
        tables = read_toml(directory / "pyproject.toml")
        if "workspace" in tables.get("tool", {}).get("uv", {}):
            return directory
    return None


def read_toml(path: Path) -> dict[str, Any]:
    """The tables of a TOML file (a pyproject.toml); empty when it is missing or not TOML."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return {}
