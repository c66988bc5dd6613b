"""Every container image is one the Tiltfile builds, under a fixed tag."""

from __future__ import annotations

from repomodel.istio import describe

from repocheck.k8s import workloads
from repocheck.k8s.apps import image_name
from repocheck.k8s.inventory import Inventory


def _tag(image: str) -> str:
    """The tag of an image reference ("" when it has none; a digest counts as fixed)."""
    if "@" in image:
        return "@" + image.split("@", 1)[1]
    return image[len(image_name(image)) + 1 :]


def images_are_built_by_tilt(inventory: Inventory) -> list[str]:
    """Every container image is one the Tiltfile builds (``inventory.built_images``).

    And it names a fixed tag: without one (or with ``latest``) a plain
    ``kubectl apply -k`` would pull whatever ``latest`` is; Tilt matches the
    untagged ref it builds and rewrites the tag.
    """
    if inventory.built_images is None:
        return ["the images the Tiltfile builds are unknown (the Tiltfile was not evaluated)"]
    built = {image_name(i) for i in inventory.built_images}
    problems: list[str] = []
    for workload in workloads.workloads(inventory.objects):
        for container in workloads.containers(workload):
            image = str(container.get("image", ""))
            if _tag(image) in ("", "latest"):
                problems.append(
                    f"{describe(workload)} container {container.get('name')}: image {image!r} "
                    "has no fixed tag (kubectl apply would pull `latest`)"
                )
            if image_name(image) not in built:
                problems.append(
                    f"{describe(workload)} container {container.get('name')}: image {image!r} "
                    f"is not built by the Tiltfile (it builds {sorted(built)})"
                )
    return problems
