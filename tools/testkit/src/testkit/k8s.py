"""Helpers for the tests of the Kubernetes checks.

Used by tools/repocheck/tests/test_k8s_*.py and tests/test_k8s_*.py.

The repository's manifests are rendered once per test session
(:func:`repo_rendered`, cached); a negative test copies ``k8s/`` (and the
files the inventory reads) into a temporary directory, breaks one manifest
there with :func:`broken_copy`, and builds that copy's inventory.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable
from pathlib import Path

import yaml
from repocheck.k8s import manifests
from repocheck.k8s.inventory import Inventory, load_inventory, render_all
from repocheck.k8s.manifests import K8S_DIR, REPO_ROOT, Obj
from repomodel import istio as mesh

Mutation = Callable[[list[Obj]], None]


@functools.cache
def repo_rendered() -> dict[Path, list[Obj]]:
    """Every kustomization of the repository, rendered once per process."""
    return render_all(REPO_ROOT / K8S_DIR)


@functools.cache
def repo_built_images() -> frozenset[str]:
    """The images the repository's Tiltfile builds (evaluated once per process)."""
    from repocheck.tilt import built_images

    return frozenset(built_images(REPO_ROOT))


def repo_inventory() -> Inventory:
    return load_inventory(REPO_ROOT, repo_rendered(), repo_built_images())


def broken_copy(tmp_path: Path, relative: str, mutate: Mutation) -> Path:
    """A copy of the repository's ``k8s/`` under ``tmp_path`` with one file changed.

    ``mutate`` edits the YAML documents of ``relative`` (a path under the repo
    root, e.g. ``k8s/apps/books.yaml``) in place. Returns the copy's root.
    """
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / K8S_DIR, root / K8S_DIR)
    target = root / relative
    documents = manifests.load_file(target)
    mutate(documents)
    target.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return root


def copy_inventory(root: Path) -> Inventory:
    """The inventory of a (broken) copy; images as the repository's Tiltfile builds them."""
    return load_inventory(root, render_all(root / K8S_DIR, roots_only=True), repo_built_images())


def find(documents: list[Obj], kind: str, name: str) -> Obj:
    """The document of that kind and name (for mutations)."""
    for document in documents:
        if mesh.kind(document) == kind and mesh.name(document) == name:
            return document
    raise LookupError(f"no {kind} {name}")


def container(documents: list[Obj], workload: str, name: str | None = None) -> Obj:
    """A container of a Deployment in ``documents`` (the first one without ``name``)."""
    containers = find(documents, "Deployment", workload)["spec"]["template"]["spec"]["containers"]
    for candidate in containers:
        if name is None or candidate["name"] == name:
            return candidate  # type: ignore[no-any-return]
    raise LookupError(f"no container {name} in {workload}")


def env_var(container_spec: Obj, name: str) -> Obj:
    for var in container_spec["env"]:
        if var["name"] == name:
            return var  # type: ignore[no-any-return]
    raise LookupError(f"no env var {name}")
