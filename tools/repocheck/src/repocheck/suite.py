"""Every check by name (k8s cross-checks, schemas, the Tiltfile) and one call that runs them.

It sits above :mod:`repocheck.k8s` and :mod:`repocheck.tilt`: the Tiltfile check reads the
k8s model, and the image check reads what the Tiltfile builds, so only this module imports both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from repocheck.k8s import flows, images, istio, pods, references, served, services, shutdown
from repocheck.k8s.inventory import Inventory, load_inventory, render_all
from repocheck.k8s.manifests import K8S_DIR, Obj, overlay_dirs
from repocheck.k8s.schemas import CrdSchemas, validate

Check = Callable[[Inventory], list[str]]

CROSS_CHECKS: dict[str, Check] = {
    "service-selectors": services.service_selectors_match_pods,
    "service-target-ports": services.service_target_ports_match_containers,
    "env-addresses": services.env_addresses_point_at_services,
    "virtualservice-hosts": istio.virtual_service_hosts_exist,
    "subsets": istio.subsets_exist_and_match_pods,
    "route-weights": istio.route_weights_sum_to_100,
    "mirrored-routes": istio.gateway_catch_all_mirrors_mesh_routes,
    "authorization-principals": istio.authorization_principals_are_service_accounts,
    "flows": flows.policies_follow_the_flow_table,
    "references": references.referenced_objects_exist,
    "app-settings": served.app_settings_accept_env,
    "probe-paths": served.probe_paths_are_served,
    "mesh-paths": served.mesh_paths_are_served,
    "images": images.images_are_built_by_tilt,
    "pod-security": pods.pod_security,
    "service-tagging": pods.unified_service_tagging,
    "shutdown-budget": shutdown.termination_grace_fits_shutdown,
}


@dataclass
class Report:
    """Problems by check name ("schema:<dir>" for schema validation)."""

    problems: dict[str, list[str]]

    @property
    def ok(self) -> bool:
        return not any(self.problems.values())


def schema_problems(
    rendered: dict[Path, list[Obj]], schemas: CrdSchemas, repo_root: Path
) -> dict[str, list[str]]:
    """Schema violations per kustomization, keyed ``schema:k8s/<dir>``."""
    return {
        f"schema:{directory.relative_to(repo_root)}": validate(objects, schemas)
        for directory, objects in rendered.items()
    }


def variant_inventory(
    repo_root: Path,
    rendered: dict[Path, list[Obj]],
    overlay: Path,
    built: set[str] | frozenset[str] | None = None,
) -> Inventory:
    """The inventory as deployed with ``overlay``: its objects first, so they win."""
    ordered = {overlay: rendered[overlay], **{d: o for d, o in rendered.items() if d != overlay}}
    return load_inventory(repo_root, ordered, built)


# The Tiltfile's own check (repocheck.tilt.check_tiltfile: Tilt's argument
# names, arity and types, duplicate image refs, builds, live_update paths,
# resources), reported under this name when the run includes the Tiltfile.
TILTFILE_CHECK = "tiltfile"


def run(repo_root: Path, schemas: CrdSchemas | None = None, *, with_tilt: bool = True) -> Report:
    """Render every kustomization once, validate every object, run every cross-check.

    With ``with_tilt`` the Tiltfile is evaluated once: its builds feed the
    ``images`` check and its own problems are the ``tiltfile`` check.
    """
    rendered = render_all(repo_root / K8S_DIR)
    built: set[str] | None = None
    tilt_problems: list[str] = []
    tilt_error: str | None = None
    if with_tilt:
        from repocheck.tilt import built_images, check_tiltfile, evaluate_tiltfile  # starlark: lazy

        try:
            evaluated = evaluate_tiltfile(repo_root)
            built = built_images(repo_root, evaluated)
            tilt_problems = check_tiltfile(repo_root, evaluated)
        except Exception as error:  # any failure of the evaluator is reported, not raised
            tilt_error = f"the Tiltfile could not be evaluated: {type(error).__name__}: {error}"
            tilt_problems = [tilt_error]
    inventory = load_inventory(repo_root, rendered, built)
    problems = schema_problems(rendered, schemas or CrdSchemas(), repo_root)
    for name, check in CROSS_CHECKS.items():
        problems[name] = check(inventory)
    # Each overlay is a whole deployable variant: its objects replace the base's.
    for overlay in overlay_dirs(repo_root / K8S_DIR, rendered):
        variant = variant_inventory(repo_root, rendered, overlay, built)
        where = overlay.relative_to(repo_root)
        for name, check in CROSS_CHECKS.items():
            problems[name] += [f"{where}: {problem}" for problem in check(variant)]
    if tilt_error is not None:
        problems["images"] = [tilt_error]
    if with_tilt:
        problems[TILTFILE_CHECK] = tilt_problems
    return Report(problems)
