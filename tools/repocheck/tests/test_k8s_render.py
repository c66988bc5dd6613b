"""Every kustomization under k8s/ renders on its own and every object is valid.

Core kinds: kubernetes-validate, strict. Custom resources: the JSON schemas at
$CRD_SCHEMA_LOCATION (CI: ../shared/crd-schemas). Unknown kinds and missing
schemas fail.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from repocheck.__main__ import main
from repocheck.k8s import manifests
from repocheck.k8s.schemas import CrdSchemas, validate
from testkit.k8s import repo_rendered

K8S = manifests.REPO_ROOT / manifests.K8S_DIR
EXPECTED_KUSTOMIZATIONS = {
    "k8s",
    "k8s/apps",
    "k8s/istio",
    "k8s/metallb",
    "k8s/datadog",
    "k8s/apm-test-agent",
    "k8s/overlays/books-postgres",
    "k8s/overlays/books-postgres-pooler",
}


@pytest.fixture(scope="module")
def schemas() -> CrdSchemas:
    return CrdSchemas()


def _rendered(relative: str) -> list[manifests.Obj]:
    return repo_rendered()[manifests.REPO_ROOT / relative]


def test_each_part_has_its_own_kustomization() -> None:
    found = {str(d.relative_to(manifests.REPO_ROOT)) for d in repo_rendered()}
    assert found == EXPECTED_KUSTOMIZATIONS


@pytest.mark.parametrize("relative", sorted(EXPECTED_KUSTOMIZATIONS))
def test_kustomization_renders_valid_objects(relative: str, schemas: CrdSchemas) -> None:
    objects = _rendered(relative)
    assert objects, f"{relative} renders nothing"
    assert validate(objects, schemas) == []


def test_top_level_is_apps_plus_istio() -> None:
    top = {manifests.identity(o) for o in _rendered("k8s")}
    parts = {manifests.identity(o) for o in _rendered("k8s/apps") + _rendered("k8s/istio")}
    assert top == parts


def test_overlays_deploy_what_k8s_deploys_plus_their_components() -> None:
    import yaml

    top = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for overlay in manifests.overlay_dirs(K8S, repo_rendered()):
        spec = yaml.safe_load((overlay / "kustomization.yaml").read_text())
        resources = {(overlay / r).resolve() for r in spec["resources"]}
        assert resources == {(K8S / r).resolve() for r in top["resources"]}, overlay
        assert spec["components"], overlay
        base = {manifests.identity(o) for o in _rendered("k8s")}
        assert base - {manifests.identity(o) for o in repo_rendered()[overlay]} <= {
            ("", "PersistentVolumeClaim", "apps", "books-data")
        }


def test_components_are_not_rendered_alone() -> None:
    components = [d for d in (K8S / "components").iterdir() if d.is_dir()]
    assert components
    for component in components:
        assert manifests.is_component(component / "kustomization.yaml")
        assert component not in repo_rendered()


def _deployment(name: str) -> manifests.Obj:
    for obj in _rendered("k8s/apps"):
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == name:
            return copy.deepcopy(obj)
    raise LookupError(name)


def _virtual_service(name: str) -> manifests.Obj:
    for obj in _rendered("k8s/istio"):
        if obj["kind"] == "VirtualService" and obj["metadata"]["name"] == name:
            return copy.deepcopy(obj)
    raise LookupError(name)


def test_core_kind_with_an_unknown_field_fails(schemas: CrdSchemas) -> None:
    books = _deployment("books")
    books["spec"]["replica"] = 1  # typo of replicas
    problems = validate([books], schemas)
    assert problems and "Deployment apps/books" in problems[0] and "replica" in problems[0]


def test_core_kind_with_a_wrong_type_fails(schemas: CrdSchemas) -> None:
    books = _deployment("books")
    books["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8080"
    assert validate([books], schemas)


def test_custom_resource_with_an_unknown_field_fails(schemas: CrdSchemas) -> None:
    vs = _virtual_service("text-to-speech")
    vs["spec"]["http"][0]["timeOut"] = "5s"
    problems = validate([vs], schemas)
    assert problems and "VirtualService apps/text-to-speech" in problems[0]


def test_custom_resource_with_a_wrong_value_fails(schemas: CrdSchemas) -> None:
    vs = _virtual_service("text-to-speech")
    vs["spec"]["http"][-1]["route"][0]["weight"] = "seventy"
    assert validate([vs], schemas)


def test_unknown_kind_fails(schemas: CrdSchemas) -> None:
    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "apps"},
    }
    problems = validate([widget], schemas)
    assert problems and "Widget apps/w" in problems[0] and "no schema" in problems[0]


def test_unknown_core_kind_fails(schemas: CrdSchemas) -> None:
    gadget = {"apiVersion": "apps/v1", "kind": "Gadget", "metadata": {"name": "g"}}
    problems = validate([gadget], schemas)
    assert problems and "Gadget g" in problems[0]


def test_missing_schema_fails(tmp_path: Path) -> None:
    empty = CrdSchemas(str(tmp_path))
    problems = validate(_rendered("k8s/istio"), empty)
    assert problems and all("no schema at" in p for p in problems)


def test_cli_passes_on_the_repository(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "checks passed" in capsys.readouterr().out


def test_cli_fails_on_a_broken_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from testkit.k8s import broken_copy, find

    def break_selector(docs: list[manifests.Obj]) -> None:
        find(docs, "Service", "books")["spec"]["selector"] = {"app": "nobody"}

    root = broken_copy(tmp_path, "k8s/apps/books.yaml", break_selector)
    assert main(["--root", str(root), "--no-tilt"]) == 1
    out = capsys.readouterr().out
    assert "service-selectors: Service apps/books" in out
