"""Checks: cross-check what the Tiltfile declared against the repository."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from repocheck import dockerfiles
from repocheck.k8s import workloads
from repocheck.k8s.manifests import REPO_ROOT
from repocheck.k8s.workloads import containers
from repocheck.tilt.evaluation import evaluate_tiltfile
from repocheck.tilt.results import INLINE_DOCKERFILE, ImageBuild, TiltfileResult

IMAGE_PREFIX = "speech-mesh/"

# image name (without prefix) -> service folder under services/
SERVICE_IMAGES: dict[str, str] = {
    "books": "books",
    "tts-backend": "tts_backend",
    "tts-v1": "tts_v1",
    "tts-v2": "tts_v2",
    "client": "client",
}


def built_images(repo_root: Path = REPO_ROOT, result: TiltfileResult | None = None) -> set[str]:
    """The image refs the Tiltfile builds (what manifests may use)."""
    result = result or evaluate_tiltfile(repo_root)
    return {image.ref for image in result.images}


def manifest_images(objects: Iterable[Mapping[str, Any]]) -> set[str]:
    """Container images of every workload among ``objects``."""
    images: set[str] = set()
    for obj in objects:
        for container in containers(obj):
            if container.get("image"):
                images.add(str(container["image"]))
    return images


def _covered(path: str, patterns: Sequence[str]) -> bool:
    """Is ``path`` inside one of the ``only=`` entries (files or folders)?"""
    clean = posixpath.normpath(path)
    for entry in patterns:
        base = posixpath.normpath(entry)
        if clean == base or clean.startswith(base + "/") or base == ".":
            return True
    return False


def _image_problems(repo_root: Path, image: ImageBuild) -> list[str]:
    problems: list[str] = []
    where = f"docker_build({image.ref!r})"
    context = repo_root / image.context
    dockerfile = repo_root / image.dockerfile
    if not context.is_dir():
        problems.append(f"{where}: context {image.context!r} does not exist")
    if image.dockerfile == INLINE_DOCKERFILE:
        return problems  # no Dockerfile on disk to compare with
    if not dockerfile.is_file():
        problems.append(f"{where}: Dockerfile {image.dockerfile!r} does not exist")
        return problems
    if image.only:
        for entry in image.only:
            if not (context / entry).exists():
                problems.append(f"{where}: only= entry {entry!r} does not exist")
        for source in dockerfiles.copy_sources(dockerfile, dict(image.build_args)):
            if not _covered(source, image.only):
                problems.append(
                    f"{where}: the Dockerfile copies {source!r}, which only= leaves out"
                )
    seen_sync = False
    for step in image.live_update:
        if not isinstance(step, Mapping):
            continue  # a step whose call was already reported as wrong
        kind = step.get("__tilt_step__")
        if kind == "sync":
            seen_sync = True
            local = str(step["local_path"])
            if not (repo_root / local).exists():
                problems.append(f"{where}: live_update sync path {local!r} does not exist")
            elif image.only and not _covered(posixpath.relpath(local, image.context), image.only):
                problems.append(f"{where}: live_update syncs {local!r}, which only= leaves out")
        elif kind == "fall_back_on":
            if seen_sync:
                problems.append(f"{where}: fall_back_on must come before the sync steps")
            paths = step["paths"]
            for path in [paths] if isinstance(paths, str) else paths:
                if not (repo_root / str(path)).exists():
                    problems.append(f"{where}: fall_back_on path {path!r} does not exist")
        elif kind == "restart_container":
            problems.append(f"{where}: restart_container() is not allowed (Kubernetes)")
    if image.live_update and not image.restart and not _reloads_warm_parent(image, dockerfile):
        problems.append(
            f"{where}: live_update without a restart: the restart_process extension, or a "
            f"last step run({WARM_RELOAD!r}) with the image's ENTRYPOINT under servicekit.prefork"
        )
    if image.restart:
        # restart_process replaces the container command: it must start what
        # the image itself starts.
        expected = dockerfiles.final_entrypoint(dockerfile)
        if expected is not None and image.entrypoint != expected:
            problems.append(
                f"{where}: restarts {image.entrypoint!r}, "
                f"but the image's ENTRYPOINT is {expected!r}"
            )
    return problems


# live_update's last step for an image whose ENTRYPOINT is servicekit.prefork's warm
# parent (PID 1): it forks a new child that imports the synced source.
WARM_RELOAD = "kill -HUP 1"


def _reloads_warm_parent(image: ImageBuild, dockerfile: Path) -> bool:
    steps = [s for s in image.live_update if isinstance(s, Mapping)]
    if not steps or steps[-1].get("__tilt_step__") != "run":
        return False
    command = steps[-1].get("cmd")
    if (" ".join(command) if isinstance(command, list) else command) != WARM_RELOAD:
        return False
    entrypoint = dockerfiles.final_entrypoint(dockerfile) or []
    return entrypoint[1:3] == list(dockerfiles.PREFORK_ARGS)


def check_tiltfile(repo_root: Path = REPO_ROOT, result: TiltfileResult | None = None) -> list[str]:
    """Everything wrong with the Tiltfile, as messages (empty when fine)."""
    result = result or evaluate_tiltfile(repo_root)
    problems = [f"Tiltfile: {p}" for p in dict.fromkeys(result.problems)]
    if result.failure:
        return [*problems, f"Tiltfile failed: {result.failure}"]

    by_ref = {image.ref: image for image in result.images}
    for name, folder in SERVICE_IMAGES.items():
        ref = IMAGE_PREFIX + name
        image = by_ref.get(ref)
        if image is None:
            problems.append(f"Tiltfile: no docker_build for {ref}")
            continue
        expected = dockerfiles.SERVICE_DOCKERFILE
        if posixpath.normpath(image.dockerfile) != expected:
            problems.append(f"Tiltfile: {ref} builds from {image.dockerfile!r}, not {expected!r}")
        service = dict(image.build_args).get("SERVICE")
        if service != folder:
            problems.append(f"Tiltfile: {ref} builds with SERVICE={service!r}, not {folder!r}")
    for image in result.images:
        problems.extend(_image_problems(repo_root, image))

    for missing in sorted(manifest_images(result.manifests) - set(by_ref)):
        problems.append(f"Tiltfile: manifests use image {missing!r}; no docker_build builds it")

    problems.extend(_resource_problems(result))
    return problems


def _workload_names(objects: Iterable[dict[str, Any]]) -> set[str]:
    return {str(o["metadata"]["name"]) for o in workloads.workloads(objects)}


def _object_selectors(objects: Iterable[Mapping[str, Any]]) -> set[str]:
    selectors: set[str] = set()
    for o in objects:
        meta = o.get("metadata", {})
        name, kind = str(meta.get("name", "")), str(o.get("kind", "")).lower()
        selectors.update({name, f"{name}:{kind}", f"{name}:{kind}:{meta.get('namespace', '')}"})
    return selectors


def _resource_problems(result: TiltfileResult) -> list[str]:
    problems: list[str] = []
    workloads = _workload_names(result.manifests)
    selectors = _object_selectors(result.manifests)
    resources = {str(c.args["name"]) for c in result.called("local_resource")}
    configured: set[str] = set()
    for call in result.called("k8s_resource"):
        workload = call.args.get("workload")
        if workload is not None:
            if str(workload) not in workloads:
                problems.append(f"Tiltfile: k8s_resource({workload!r}) names no workload")
            configured.add(str(workload))
        name = call.args.get("new_name") or workload
        if name is None:
            problems.append("Tiltfile: k8s_resource() with neither workload nor new_name")
            continue
        resources.add(str(name))
        for selector in call.args.get("objects") or []:
            if str(selector).lower() not in {s.lower() for s in selectors}:
                problems.append(f"Tiltfile: k8s_resource({name!r}) object {selector!r} not found")
    resources |= workloads
    for call in [*result.called("k8s_resource"), *result.called("local_resource")]:
        name = call.args.get("new_name") or call.args.get("workload") or call.args.get("name")
        for dep in call.args.get("resource_deps") or []:
            if str(dep) not in resources:
                problems.append(f"Tiltfile: {name!r} depends on unknown resource {dep!r}")
    for workload in sorted(workloads - configured):
        problems.append(f"Tiltfile: workload {workload!r} has no k8s_resource (labels, deps)")
    return problems
