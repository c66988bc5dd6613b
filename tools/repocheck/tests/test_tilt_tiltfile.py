"""The Tiltfile, evaluated against Tilt's real API without Tilt (repocheck.tilt)."""

from __future__ import annotations

import posixpath

import pytest
import yaml
from repocheck import dockerfiles, tilt
from repocheck.k8s import manifests, workloads
from repocheck.k8s.apps import image_name
from repocheck.tilt import IMAGE_PREFIX, SERVICE_IMAGES, TiltfileResult

ROOT = tilt.REPO_ROOT
FRONTS = ("text-to-speech-v1", "text-to-speech-v2")
SERVICE_REFS = {IMAGE_PREFIX + name for name in SERVICE_IMAGES}
# Not a service: the Datadog APM test agent, deployed only by --apm=test-agent.
APM_TEST_AGENT_REF = IMAGE_PREFIX + "apm-test-agent"


@pytest.fixture(scope="module")
def evaluated() -> TiltfileResult:
    return tilt.evaluate_tiltfile(ROOT)


# Reloaded by the warm parent (servicekit.prefork); the client restarts (restart_process).
WARM_FOLDERS = ("books", "tts_backend", "tts_v1", "tts_v2")


def _services(result: TiltfileResult) -> list[tilt.ImageBuild]:
    return [image for image in result.images if image.ref in SERVICE_REFS]


def _resource(result: TiltfileResult, workload: str) -> dict[str, object]:
    calls = [c.args for c in result.called("k8s_resource") if c.args.get("workload") == workload]
    assert len(calls) == 1, f"expected one k8s_resource({workload!r}), got {len(calls)}"
    return calls[0]


def test_the_tiltfile_passes_every_check(evaluated: TiltfileResult) -> None:
    assert evaluated.failure is None
    assert tilt.check_tiltfile(ROOT, evaluated) == []


def test_every_service_image_is_built_from_the_one_dockerfile(evaluated: TiltfileResult) -> None:
    by_ref = {image.ref: image for image in evaluated.images}
    assert set(by_ref) == SERVICE_REFS | {APM_TEST_AGENT_REF}
    for name, folder in SERVICE_IMAGES.items():
        image = by_ref[IMAGE_PREFIX + name]
        assert image.context == "."
        assert image.dockerfile == "services/Dockerfile"
        assert dict(image.build_args) == {"SERVICE": folder}
        assert (ROOT / image.dockerfile).is_file()


def test_every_image_the_rendered_manifests_use_is_built(evaluated: TiltfileResult) -> None:
    # Rendered here independently of the Tiltfile: what `kubectl apply -k k8s` would use.
    rendered = manifests.render(ROOT / "k8s")
    used = tilt.manifest_images(rendered)
    assert used, "the rendered manifests use no image at all"
    # Each under a fixed tag, which Tilt rewrites: it matches the untagged refs it builds.
    assert all(image_name(i) != i for i in used), used
    assert {image_name(i) for i in used} <= tilt.built_images(ROOT, evaluated)


def test_live_update_syncs_sources_into_the_editable_install_and_restarts(
    evaluated: TiltfileResult,
) -> None:
    for image in _services(evaluated):
        folder = SERVICE_IMAGES[image.ref.removeprefix(IMAGE_PREFIX)]
        steps = list(image.live_update)
        syncs = {s["local_path"]: s["remote_path"] for s in steps if s["__tilt_step__"] == "sync"}
        expected = {
            f"services/{folder}/src": f"/app/services/{folder}/src",
            "libs/servicekit/src": "/app/libs/servicekit/src",
            "protos/src": "/app/protos/src",
        }
        if folder in ("tts_v1", "tts_v2"):  # the fronts' shared member
            expected["libs/speech_front/src"] = "/app/libs/speech_front/src"
        if folder in ("tts_v1", "tts_v2", "tts_backend"):  # WAV, the contract's audio format
            expected["libs/pcm_wav/src"] = "/app/libs/pcm_wav/src"
        assert syncs == expected
        fall_back = [s for s in steps if s["__tilt_step__"] == "fall_back_on"]
        assert fall_back and steps[0] is fall_back[0], "fall_back_on must come first"
        assert {"uv.lock", "pyproject.toml", f"services/{folder}/pyproject.toml"} <= set(
            fall_back[0]["paths"]
        )
        if folder in WARM_FOLDERS:  # the warm parent (PID 1) forks anew after every sync
            last = {k: v for k, v in steps[-1].items() if k != "__tilt_step_id__"}
            assert not image.restart and last == {"__tilt_step__": "run", "cmd": "kill -HUP 1"}
        else:
            assert image.restart, "restart through the restart_process extension"
        assert not any(s["__tilt_step__"] == "restart_container" for s in steps)


def test_the_images_run_the_services_under_the_warm_parent() -> None:
    final = dockerfiles.stages((ROOT / dockerfiles.SERVICE_DOCKERFILE).read_text())[-1]
    entrypoint = yaml.safe_load([s for s in final if s.keyword == "ENTRYPOINT"][-1].arguments)
    assert entrypoint[1:] == ["-m", "servicekit.prefork", "/app/.venv/bin/service-entrypoint"]


def test_restart_entrypoint_is_the_dockerfile_entrypoint(evaluated: TiltfileResult) -> None:
    for image in _services(evaluated):
        if not image.restart:
            continue
        text = (ROOT / image.dockerfile).read_text()
        final = dockerfiles.stages(text)[-1]
        entrypoint = [s for s in final if s.keyword == "ENTRYPOINT"][-1]
        assert image.entrypoint == yaml.safe_load(entrypoint.arguments)
        # The extension's restart file is created at build time by the image's
        # user (uid 10001 owns /app) and must not sit under a volume mount.
        assert image.restart_file is not None
        assert posixpath.dirname(image.restart_file) == "/app"


def test_the_build_context_is_narrowed_with_only(evaluated: TiltfileResult) -> None:
    for image in evaluated.images:
        assert image.only, f"{image.ref}: no only="
        assert "." not in image.only
        assert not any(entry.startswith(("k8s", "tests", ".git")) for entry in image.only)


def test_resources_have_labels_deps_and_port_forwards(evaluated: TiltfileResult) -> None:
    for workload in ("books", "tts-backend", *FRONTS, "client"):
        assert _resource(evaluated, workload)["labels"], f"{workload}: no labels"
    for front in FRONTS:
        deps = _resource(evaluated, front)["resource_deps"]
        assert isinstance(deps, list)
        assert {"books", "tts-backend"} <= set(deps)
        forwards = _resource(evaluated, front)["port_forwards"]
        assert isinstance(forwards, list)
        assert [f["container_port"] for f in forwards] == [8080]
    books_links = _resource(evaluated, "books")["links"]
    assert isinstance(books_links, list)
    assert any(link["url"] == "http://localhost/" for link in books_links)


def test_gateway_ip_from_the_environment_becomes_a_link() -> None:
    result = tilt.evaluate_tiltfile(ROOT, env={"GATEWAY_IP": "172.18.255.205"})
    links = _resource(result, "text-to-speech-v1")["links"]
    assert isinstance(links, list)
    assert "http://172.18.255.205/" in [link["url"] for link in links]


def test_protos_are_regenerated_when_the_contract_changes(evaluated: TiltfileResult) -> None:
    (codegen,) = evaluated.called("local_resource")
    assert "protos/generate.py" in codegen.args["cmd"]
    assert (ROOT / "protos" / "generate.py").is_file()
    deps = codegen.args["deps"]
    assert any((ROOT / dep / "v1" / "tts.proto").is_file() for dep in deps)
    assert "protos-codegen" in _resource(evaluated, "tts-backend")["resource_deps"]  # type: ignore[operator]


@pytest.mark.parametrize("context", ["gke_prod_europe", "docker-desktop", "kind-other", ""])
def test_any_context_but_the_local_kind_cluster_is_refused(context: str) -> None:
    result = tilt.evaluate_tiltfile(ROOT, kube_context=context)
    assert result.failure is not None
    assert "refusing kube context" in result.failure
    assert not result.images


def test_the_kind_context_is_allowed_explicitly(evaluated: TiltfileResult) -> None:
    (allowed,) = evaluated.called("allow_k8s_contexts")
    assert allowed.args["contexts"] == tilt.default_kube_context(ROOT) == "kind-speech-mesh"


def test_live_update_can_write_into_the_containers(evaluated: TiltfileResult) -> None:
    for obj in evaluated.manifests:
        for container in workloads.containers(obj):
            if str(container.get("image", "")).startswith(IMAGE_PREFIX):
                assert container["securityContext"]["readOnlyRootFilesystem"] is False


def test_no_datadog_turns_tracing_off_and_drops_the_envoy_telemetry() -> None:
    plain = tilt.evaluate_tiltfile(ROOT)
    result = tilt.evaluate_tiltfile(ROOT, flags={"no-datadog": True})
    assert result.failure is None
    assert any(o["kind"] == "Telemetry" for o in plain.manifests)
    assert not any(o["kind"] == "Telemetry" for o in result.manifests)
    deployments = [o for o in result.manifests if o["kind"] == "Deployment"]
    assert deployments
    for obj in deployments:
        for container in workloads.containers(obj):
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            assert env["DD_TRACE_ENABLED"] == "false"
            assert env["DD_PROFILING_ENABLED"] == "false"


def _v1_v2_splits(result: TiltfileResult) -> list[dict[str, int]]:
    splits = []
    for obj in result.manifests:
        if obj["kind"] != "VirtualService":
            continue
        for rule in obj["spec"].get("http", []):
            routes = rule.get("route", [])
            weights = {r["destination"].get("subset"): r.get("weight") for r in routes}
            if set(weights) == {"v1", "v2"}:
                splits.append(weights)
    return splits


def test_canary_weight_overrides_every_v1_v2_split() -> None:
    default = _v1_v2_splits(tilt.evaluate_tiltfile(ROOT))
    assert default and all(s == {"v1": 70, "v2": 30} for s in default)
    result = tilt.evaluate_tiltfile(ROOT, flags={"canary-weight": "50"})
    assert result.failure is None
    overridden = _v1_v2_splits(result)
    assert len(overridden) == len(default)
    assert all(s == {"v1": 50, "v2": 50} for s in overridden)


@pytest.mark.parametrize("weight", ["150", "-5", "half"])
def test_a_bad_canary_weight_stops_the_tiltfile(weight: str) -> None:
    result = tilt.evaluate_tiltfile(ROOT, flags={"canary-weight": weight})
    assert result.failure is not None
    assert "--canary-weight" in result.failure


def test_built_images_is_what_other_checks_call() -> None:
    assert tilt.built_images() == SERVICE_REFS | {APM_TEST_AGENT_REF}


def test_apm_test_agent_is_deployed_traced_to_and_forwarded() -> None:
    plain = tilt.evaluate_tiltfile(ROOT)
    result = tilt.evaluate_tiltfile(ROOT, flags={"apm": "test-agent"})
    assert result.failure is None
    assert tilt.check_tiltfile(ROOT, result) == []
    assert not any(o["metadata"].get("namespace") == "apm" for o in plain.manifests)
    agent = [o for o in result.manifests if o["metadata"]["name"] == "apm-test-agent"]
    assert {o["kind"] for o in agent} == {
        "ServiceAccount",
        "Service",
        "Deployment",
        "NetworkPolicy",
    }
    (deployment,) = [o for o in agent if o["kind"] == "Deployment"]
    (container,) = workloads.containers(deployment)
    assert image_name(container["image"]) == APM_TEST_AGENT_REF
    assert container["securityContext"]["readOnlyRootFilesystem"] is True  # no live update
    (image,) = [i for i in result.images if i.ref == APM_TEST_AGENT_REF]
    assert image.dockerfile == "k8s/apm-test-agent/Dockerfile" and not image.live_update
    (service,) = [o for o in agent if o["kind"] == "Service"]
    url = f"http://{service['metadata']['name']}.{service['metadata']['namespace']}"
    url += f".svc.cluster.local:{service['spec']['ports'][0]['port']}"
    apps = [
        o
        for o in result.manifests
        if o["kind"] == "Deployment" and o["metadata"]["namespace"] == "apps"
    ]
    assert apps
    for obj in apps:
        for app in workloads.containers(obj):
            env = {e["name"]: e.get("value") for e in app.get("env", [])}
            assert env["DD_TRACE_AGENT_URL"] == url
            assert "DD_TRACE_ENABLED" not in env
    (telemetry,) = [o for o in result.manifests if o["kind"] == "Telemetry"]
    assert telemetry["spec"]["tracing"][0]["providers"] == [{"name": "apm-test-agent"}]
    operator = yaml.safe_load((ROOT / "k8s/istio/install/istio-operator.yaml").read_text())
    providers = {p["name"]: p for p in operator["spec"]["meshConfig"]["extensionProviders"]}
    assert url == "http://{service}:{port}".format(**providers["apm-test-agent"]["datadog"])
    forwards = _resource(result, "apm-test-agent")["port_forwards"]
    assert isinstance(forwards, list)
    # Where `client compare` looks by default (AGENT_URL http://127.0.0.1:8126).
    assert [(f["local_port"], f["container_port"]) for f in forwards] == [(8126, 8126)]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"apm": "jaeger"}, "--apm must be datadog or test-agent"),
        ({"apm": "test-agent", "no-datadog": True}, "leave out --no-datadog"),
    ],
)
def test_a_bad_apm_flag_stops_the_tiltfile(flags: dict[str, object], message: str) -> None:
    result = tilt.evaluate_tiltfile(ROOT, flags=flags)
    assert result.failure is not None and message in result.failure


def test_books_db_postgres_deploys_the_overlay_with_its_database() -> None:
    result = tilt.evaluate_tiltfile(ROOT, flags={"books-db": "postgres"})
    assert result.failure is None
    assert tilt.check_tiltfile(ROOT, result) == []
    (books,) = [
        o
        for o in result.manifests
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "books"
    ]
    assert books["spec"]["replicas"] == 3
    assert [o for o in result.manifests if o["kind"] == "Cluster"]
    assert not [
        o
        for o in result.manifests
        if o["kind"] == "PersistentVolumeClaim" and o["metadata"]["name"] == "books-data"
    ]
    assert _resource(result, "books")["resource_deps"] == ["books-db"]
    (database,) = [
        c.args for c in result.called("k8s_resource") if c.args.get("new_name") == "books-db"
    ]
    assert "books-db:cluster:apps" in database["objects"]
    # books starts only once the database's pods (the operator's, found by label) are ready.
    assert database["extra_pod_selectors"] == [
        {"cnpg.io/cluster": "books-db", "cnpg.io/podRole": "instance"}
    ]
    assert database["pod_readiness"] == "wait"


def test_books_db_defaults_to_sqlite_and_refuses_other_values() -> None:
    plain = tilt.evaluate_tiltfile(ROOT)
    assert [o for o in plain.manifests if o["metadata"]["name"] == "books-data"]
    assert not [o for o in plain.manifests if o["kind"] == "Cluster"]
    result = tilt.evaluate_tiltfile(ROOT, flags={"books-db": "mysql"})
    assert result.failure is not None and "--books-db" in result.failure


def test_port_forwards_do_not_collide_with_the_local_stack(evaluated: TiltfileResult) -> None:
    """`uv run stack up` and `tilt up` side by side: no local port bound twice."""
    from devstack.services import Ports

    stack_ports = set(Ports().named().values())
    local_ports = [
        forward["local_port"]
        for call in evaluated.called("k8s_resource")
        for forward in call.args.get("port_forwards") or []
    ]
    assert len(local_ports) == 4 and len(set(local_ports)) == 4
    assert not stack_ports & set(local_ports), stack_ports & set(local_ports)
    readme = (ROOT / "k8s" / "README.md").read_text()
    assert all(f"`{port}`" in readme or f"localhost:{port}" in readme for port in local_ports)


def test_readme_says_the_canary_weight_outlives_the_tilt_session() -> None:
    readme = " ".join((ROOT / "k8s" / "README.md").read_text().split())
    start = readme.index("`tilt up -- --canary-weight=50`")
    sentence = readme[start : start + 400]
    assert "stay in the cluster after Tilt stops" in sentence and "`tilt down`" in sentence


def test_books_pooler_puts_a_cloudnativepg_pooler_between_books_and_its_database() -> None:
    result = tilt.evaluate_tiltfile(ROOT, flags={"books-db": "postgres", "books-pooler": True})
    assert result.failure is None
    assert tilt.check_tiltfile(ROOT, result) == []
    (pooler,) = [o for o in result.manifests if o["kind"] == "Pooler"]
    assert pooler["spec"]["pgbouncer"]["poolMode"] == "transaction"
    assert pooler["spec"]["cluster"]["name"] == "books-db"
    (books,) = [
        o
        for o in result.manifests
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "books"
    ]
    env = {
        v["name"]: v.get("value") for v in books["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["BOOKS_DB_POOLER"] == "transaction"
    assert "@books-db-pooler-rw.apps." in str(env["BOOKS_DATABASE_URL"])
    assert _resource(result, "books")["resource_deps"] == ["books-db-pooler"]
    (bouncers,) = [
        c.args for c in result.called("k8s_resource") if c.args.get("new_name") == "books-db-pooler"
    ]
    assert bouncers["extra_pod_selectors"] == [{"cnpg.io/poolerName": "books-db-pooler-rw"}]
    assert bouncers["pod_readiness"] == "wait" and bouncers["resource_deps"] == ["books-db"]


def test_books_pooler_needs_books_db_postgres() -> None:
    result = tilt.evaluate_tiltfile(ROOT, flags={"books-pooler": True})
    assert (
        result.failure is not None and "--books-pooler needs --books-db=postgres" in result.failure
    )
