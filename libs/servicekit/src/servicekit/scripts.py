"""Where the uv workspace's pieces are: its console scripts and its root.

The one lookup of each for the tools that run from a checkout: a console
script next to the running interpreter (the local stack, ``devstack``, and the
test and bench harness, ``testkit``, start services by their script name); the
workspace root above a directory (the stack, the harness and the static checks,
``repocheck``, find the repository's files from it).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any


def console_script(name: str) -> str:
    """The workspace's console script next to the running interpreter (the uv venv).

    Falls back to the bare name (looked up on ``PATH``) when the venv has no such script.
    """
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


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
