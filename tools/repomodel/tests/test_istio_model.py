"""repomodel.istio: the documents, names, hosts and gateway binding both tools read."""

from __future__ import annotations

from pathlib import Path

import pytest
from repomodel.istio import (
    MESH,
    DocumentError,
    binds,
    bound_gateways,
    describe,
    fqdn,
    gateway_key,
    gateway_references,
    ingress_gateways,
    kind,
    load_documents,
    name,
    namespace,
    of_kind,
    parse_documents,
    qualified_name,
    service_key,
    short_host,
    yaml_files,
)

VS = {
    "kind": "VirtualService",
    "metadata": {"name": "books", "namespace": "apps"},
    "spec": {"hosts": ["books"], "gateways": ["gw", "istio-system/edge", "mesh"]},
}
CLUSTER_WIDE = {"kind": "ClusterRole", "metadata": {"name": "reader"}}
UNNAMED = {"kind": "Gateway", "metadata": {"namespace": "apps"}}


def _gateway(name: str, namespace: str, selector: dict[str, str]) -> dict[str, object]:
    return {
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": selector},
    }


# --- documents --------------------------------------------------------------


def test_parse_keeps_the_mappings_of_the_stream() -> None:
    text = "kind: A\n---\n---\njust text\n---\n- a list\n---\nkind: B\n"
    assert parse_documents(text, source="s.yaml") == [{"kind": "A"}, {"kind": "B"}]


def test_parse_error_names_the_source() -> None:
    with pytest.raises(DocumentError, match=r"^k8s/x\.yaml: not valid YAML: "):
        parse_documents("a: [unclosed\n", source="k8s/x.yaml")


def test_load_reads_every_yaml_file_below_in_path_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two.yml").write_text("kind: Two\n---\nkind: Three\n")
    (tmp_path / "a.yaml").write_text("kind: One\n")
    (tmp_path / "notes.txt").write_text("kind: Never\n")
    assert yaml_files(tmp_path) == [tmp_path / "a.yaml", tmp_path / "b" / "two.yml"]
    assert [kind(d) for d in load_documents(tmp_path)] == ["One", "Two", "Three"]


def test_load_names_the_file_that_does_not_parse(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text("kind: One\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: [\n")
    with pytest.raises(DocumentError, match=f"^{broken}: not valid YAML"):
        load_documents(tmp_path)


def test_load_of_a_missing_directory_says_so(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match=r"Istio directory .*nope does not exist"):
        load_documents(tmp_path / "nope")


# --- names ------------------------------------------------------------------


def test_names_of_a_namespaced_object() -> None:
    assert (kind(VS), namespace(VS), name(VS)) == ("VirtualService", "apps", "books")
    assert qualified_name(VS) == "apps/books"
    assert describe(VS) == "VirtualService apps/books"


def test_names_without_namespace_or_name() -> None:
    assert namespace(CLUSTER_WIDE) == "" and namespace(CLUSTER_WIDE, "default") == "default"
    assert describe(CLUSTER_WIDE) == "ClusterRole reader"
    assert describe(UNNAMED) == "Gateway apps/"
    assert describe(UNNAMED, "?") == "Gateway apps/?"
    assert (kind({}), name({}), qualified_name({}, "?")) == ("", "", "?")


def test_of_kind_keeps_the_order() -> None:
    objects = [VS, CLUSTER_WIDE, UNNAMED, VS]
    assert of_kind(objects, "VirtualService", "Gateway") == [VS, UNNAMED, VS]
    assert of_kind(objects, "Service") == []


# --- hosts ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "short"),
    [("text-to-speech.apps.svc.cluster.local", "text-to-speech"), ("books", "books"), ("", "")],
)
def test_short_host(host: str, short: str) -> None:
    assert short_host(host) == short


@pytest.mark.parametrize(
    ("host", "ns", "expanded"),
    [
        ("Books", "apps", "books.apps.svc.cluster.local"),
        ("books.apps", "apps", "books.apps"),  # already qualified: as written
        ("*", "apps", "*"),
        ("*.example.com", "apps", "*.example.com"),
        ("books", "", "books"),  # no namespace to expand with
    ],
)
def test_fqdn_expands_a_short_host_with_the_namespace(host: str, ns: str, expanded: str) -> None:
    assert fqdn(host, ns) == expanded


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("books", ("apps", "books")),
        ("books.data", ("data", "books")),
        ("books.data.svc", ("data", "books")),
        ("Books.Data.svc.cluster.local.", ("data", "books")),
        ("books.data.svc.other.domain", None),
        ("books.data.example", None),
        ("www.example.com", None),
    ],
)
def test_service_key_resolves_like_cluster_dns(host: str, key: tuple[str, str] | None) -> None:
    assert service_key(host, "apps") == key


# --- gateways ---------------------------------------------------------------

INGRESS = _gateway("gw", "apps", {"istio": "ingressgateway", "extra": "yes"})
OTHER = _gateway("private", "apps", {"istio": "egressgateway"})
EDGE = _gateway("edge", "istio-system", {"istio": "ingressgateway"})


def test_ingress_gateways_are_found_by_selector() -> None:
    documents = [VS, INGRESS, OTHER, EDGE]
    assert ingress_gateways(documents, None) == ["apps/gw", "istio-system/edge"]


@pytest.mark.parametrize("wanted", ["private", "apps/private"])
def test_a_named_gateway_is_found_whatever_its_selector(wanted: str) -> None:
    assert ingress_gateways([INGRESS, OTHER, VS], wanted) == ["apps/private"]


def test_a_named_gateway_in_another_namespace_is_not_found() -> None:
    assert ingress_gateways([INGRESS, OTHER], "other/private") == []


def test_bound_gateways_default_to_the_mesh() -> None:
    assert bound_gateways(VS) == ["gw", "istio-system/edge", "mesh"]
    assert bound_gateways({"spec": {"hosts": ["books"]}}) == [MESH]
    assert bound_gateways({}) == [MESH]


def test_gateway_keys_default_to_the_resource_namespace() -> None:
    assert gateway_key("gw", "apps") == ("apps", "gw")
    assert gateway_key("istio-system/edge", "apps") == ("istio-system", "edge")
    assert gateway_key("gw", "") == ("", "gw")
    assert gateway_references(bound_gateways(VS), "apps") == [
        ("apps", "gw"),
        ("istio-system", "edge"),
    ]
    assert gateway_references([MESH], "apps") == []


@pytest.mark.parametrize(
    ("references", "ns", "gateways", "bound"),
    [
        (["gw"], "apps", ["apps/gw"], True),
        (["apps/gw"], "", ["apps/gw"], True),
        (["gw"], "other", ["apps/gw"], False),  # a bare name is in the VS's namespace
        (["other/gw"], "apps", ["apps/gw"], False),
        (["gw"], "", ["apps/gw"], True),  # no namespace on the reference: any
        (["other/gw"], "apps", ["gw"], True),  # a Gateway named without one: any
        (["mesh"], "apps", ["apps/mesh"], False),  # `mesh` is never a Gateway
        (["mesh", "gw2", "gw"], "apps", ["apps/x", "apps/gw"], True),
        ([], "apps", ["apps/gw"], False),
    ],
)
def test_binds(references: list[str], ns: str, gateways: list[str], bound: bool) -> None:
    assert binds(references, ns, gateways) is bound
