"""Every container image is one the Tiltfile builds."""

from __future__ import annotations

from repocheck.k8s import workloads
from repocheck.k8s.apps import image_name
from repocheck.k8s.inventory import Inventory
from repocheck.k8s.manifests import describe


def images_are_built_by_tilt(inventory: Inventory) -> list[str]:
    """Every container image is one the Tiltfile builds (``inventory.built_images``)."""
    if inventory.built_images is None:
        return ["the images the Tiltfile builds are unknown (the Tiltfile was not evaluated)"]
    built = {image_name(i) for i in inventory.built_images}
    problems: list[str] = []
    for workload in workloads.workloads(inventory.objects):
        for container in workloads.containers(workload):
            image = str(container.get("image", ""))
            if image_name(image) not in built:
                problems.append(
                    f"{describe(workload)} container {container.get('name')}: image {image!r} "
                    f"is not built by the Tiltfile (it builds {sorted(built)})"
                )
    return problems
