"""Checks: cross-check what the Tiltfile declared against the repository."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from repocheck import dockerfiles
from repocheck.k8s import workloads
from repocheck.k8s.apps import image_name
from repocheck.k8s.manifests import REPO_ROOT
from repocheck.k8s.workloads import containers
from repocheck.tilt.evaluation import evaluate_tiltfile
from repocheck.tilt.results import INLINE_DOCKERFILE, ImageBuild, TiltfileResult

IMAGE_PREFIX = "speech-mesh/"
# The fixed tag k8s/ gives every service image, so that a plain `kubectl apply -k`
# never pulls `latest` (Tilt matches the untagged ref and rewrites it).
IMAGE_TAG = "0.1.0"

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
    problems = tilt_refusals(result)
    if result.failure:
        return problems

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

    # Tilt matches an untagged ref by name (any tag in the manifests), a tagged
    # one exactly.
    untagged = {ref for ref in by_ref if image_name(ref) == ref}
    used = {
        image
        for image in manifest_images(result.manifests)
        if image not in by_ref and image_name(image) not in untagged
    }
    for missing in sorted(used):
        problems.append(f"Tiltfile: manifests use image {missing!r}; no docker_build builds it")

    problems.extend(_project_resource_problems(result))
    return problems


def _workload_names(objects: Iterable[dict[str, Any]]) -> set[str]:
    return {str(o["metadata"]["name"]) for o in workloads.workloads(objects)}


def _fragments(obj: Mapping[str, Any]) -> list[str]:
    """k8s.potentialNames: name, name:kind, name:kind:namespace, name:kind:namespace:group."""
    meta = obj.get("metadata", {})
    api_version = str(obj.get("apiVersion", ""))
    group = api_version.split("/", maxsplit=1)[0] if "/" in api_version else "core"
    parts = [
        str(meta.get("name", "")),
        str(obj.get("kind", "")),
        meta.get("namespace") or "default",
    ]
    parts.append(group)
    return [":".join(parts[: i + 1]).lower() for i in range(len(parts))]


def _unique_names(objects: Sequence[Mapping[str, Any]]) -> list[str]:
    """k8s.UniqueNamesMeta: each workload's shortest fragment no other workload wants."""
    counts: dict[str, int] = {}
    for obj in objects:
        for fragment in _fragments(obj):
            counts[fragment] = counts.get(fragment, 0) + 1
    names = []
    for index, obj in enumerate(objects):
        fragments = _fragments(obj)
        unique = [f for f in fragments if counts[f] == 1]
        names.append(unique[0] if unique else f"{fragments[-1]}:{index}")
    return names


def _selector_matches(selector: str, obj: Mapping[str, Any]) -> bool:
    """k8s.SelectorFromString(...).Matches: name[:kind[:namespace]], case-insensitive."""
    parts = selector.lower().split(":")
    meta = obj.get("metadata", {})
    actual = [
        str(meta.get("name", "")),
        str(obj.get("kind", "")),
        meta.get("namespace") or "default",
    ]
    return all(want == str(have).lower() for want, have in zip(parts, actual, strict=False))


def tilt_assembly_problems(result: TiltfileResult) -> list[str]:
    """What Tilt refuses when it assembles resources after the Tiltfile ran.

    Mirrors tiltfileState.assembleK8s (internal/tiltfile/tiltfile_state.go, Tilt
    v0.34.0): one resource per workload (checkResourceConflict against the
    local_resources), its Services attached by selector, then each
    k8s_resource in call order: an existing resource (or new_name with
    objects), a rename that takes no taken name, object fragments that name
    exactly one object not yet in a resource.
    """
    names = {str(c.args["name"]): "local_resource" for c in result.called("local_resource")}
    if "" in names:  # model.Manifest.Validate, once the resources are made
        return ["Tiltfile: [validate] manifest missing name"]
    objects = list(result.manifests)
    taken: set[int] = set()
    found_workloads = workloads.workloads(objects)
    for obj, name in zip(found_workloads, _unique_names(found_workloads), strict=True):
        if name in names:
            return [
                f"Tiltfile: error making resource for workload {name}: "
                f'{names[name]} named "{name}" already exists'
            ]
        names[name] = "k8s_resource"
        taken.add(id(obj))
        labels = workloads.pod_labels(obj)
        for other in objects:
            selector = (
                other.get("spec", {}).get("selector") if other.get("kind") == "Service" else None
            )
            if selector and id(other) not in taken and workloads.selects(selector, labels):
                taken.add(id(other))
    fragments: dict[str, list[Mapping[str, Any]]] = {}
    for obj in objects:
        for fragment in _fragments(obj):
            fragments.setdefault(fragment, []).append(obj)
    for call in result.called("k8s_resource"):
        a = call.args
        workload = str(a.get("workload") or "")
        new_name = str(a.get("new_name") or "")
        if not workload:
            if new_name in names:
                return [f'Tiltfile: {names[new_name]} named "{new_name}" already exists']
            names[new_name] = "k8s_resource"
            workload = new_name
        elif workload not in names or names[workload] != "k8s_resource":
            known = ", ".join(sorted(n for n, k in names.items() if k == "k8s_resource"))
            return [
                f'Tiltfile: k8s_resource specified unknown resource "{workload}". '
                f"known k8s resources: {known}"
            ]
        elif new_name and new_name != workload:
            if new_name in names:
                return [
                    f'Tiltfile: k8s_resource specified to rename "{workload}" to "{new_name}": '
                    f'{names[new_name]} named "{new_name}" already exists'
                ]
            del names[workload]
            names[new_name] = "k8s_resource"
        for selector in a.get("objects") or []:
            text = str(selector)
            if text.count(":") > 2:
                return [
                    "Tiltfile: Error making selector from string "
                    f'"{text}": Too many parts in selector'
                ]
            found = fragments.get(text.lower(), [])
            if not found:
                return [f'Tiltfile: No object identified by the fragment "{text}" could be found']
            if len(found) > 1:
                return [f'Tiltfile: "{text}" is not a unique fragment']
            free = [o for o in objects if id(o) not in taken and _selector_matches(text, o)]
            if not free:
                return [
                    f'Tiltfile: No object identified by the fragment "{text}" could be found '
                    "in remaining YAML"
                ]
            taken.add(id(free[0]))
    return []


def tilt_refusals(result: TiltfileResult) -> list[str]:
    """Everything real Tilt refuses when it loads the Tiltfile, as Tilt-style messages."""
    problems = [f"Tiltfile: {p}" for p in dict.fromkeys(result.problems)]
    if result.failure:
        return [*problems, f"Tiltfile failed: {result.failure}"]
    if problems:
        return problems  # Tilt stops at the first error: assembly never runs
    return tilt_assembly_problems(result)


def _project_resource_problems(result: TiltfileResult) -> list[str]:
    """This project's own rules on resources (stricter than Tilt, which only warns)."""
    problems: list[str] = []
    workloads_ = _workload_names(result.manifests)
    resources = {str(c.args["name"]) for c in result.called("local_resource")} | workloads_
    configured: set[str] = set()
    for call in result.called("k8s_resource"):
        workload = call.args.get("workload")
        if workload:
            configured.add(str(workload))
        resources.add(str(call.args.get("new_name") or workload))
    for call in [*result.called("k8s_resource"), *result.called("local_resource")]:
        name = call.args.get("new_name") or call.args.get("workload") or call.args.get("name")
        for dep in call.args.get("resource_deps") or []:
            if str(dep) not in resources:
                problems.append(
                    f"Tiltfile: {name!r} depends on unknown resource {dep!r} "
                    "(project rule: Tilt only warns and drops the dependency)"
                )
    for workload in sorted(workloads_ - configured):
        problems.append(
            f"Tiltfile: workload {workload!r} has no k8s_resource (labels, deps) (project rule)"
        )
    return problems
