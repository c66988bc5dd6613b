"""Every service image built with Docker and run the way its pod runs (issue 11).

The pod spec comes from the rendered ``k8s/`` (the same render the static
checks use): env, uid/gid, read-only root filesystem, dropped capabilities, no
privilege escalation, emptyDir as tmpfs, persistent volumes as host folders.
Containers share the host network and listen on free 127.0.0.1 ports only.

Needs a Docker daemon and the base images (``scripts/build-standins`` where
no registry is reachable). Without them these tests skip with one line naming
what is missing; with ``CI=true`` they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from repocheck.k8s.manifests import K8S_DIR
from testkit import containers
from testkit.containers import ContainerError, ContainerRun, PodContainer
from testkit.k8s import repo_rendered
from testkit.process import REPO_ROOT, free_port
from testkit.testagent import ApmTestAgent

#: workload in k8s/apps -> its image (the client has two workloads; one is enough)
WORKLOADS = {
    "books": "books",
    "tts-backend": "tts-backend",
    "text-to-speech-v1": "tts-v1",
    "text-to-speech-v2": "tts-v2",
}
SERVICE_PACKAGES = {
    "books": "books",
    "tts-backend": "tts_backend",
    "tts-v1": "tts_v1",
    "tts-v2": "tts_v2",
    "client": "polling_client",
}
#: what no image may hold: dev tools, the test harness, the local-only tools
NEVER_IN_AN_IMAGE = ("pytest", "hypothesis", "mypy", "ruff", "testkit", "devstack", "repocheck")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def docker_ready() -> None:
    reason = containers.docker_unavailable()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the container tests cannot run: {reason}")
    pytest.skip(f"containers: {reason}")


@pytest.fixture(scope="session")
def built(docker_ready: None) -> dict[str, float]:
    """Every image built once per session from the working tree; seconds per image."""
    return {name: containers.build_image(build) for name, build in containers.IMAGE_BUILDS.items()}


@pytest.fixture(scope="session")
def pods() -> dict[str, PodContainer]:
    return containers.pod_containers(repo_rendered()[REPO_ROOT / K8S_DIR])


@pytest.fixture(scope="session")
def agent(docker_ready: None) -> Iterator[ApmTestAgent]:
    with ApmTestAgent() as running:
        yield running


@pytest.fixture
def volumes(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "volumes"
    folder.mkdir()
    yield folder
    # The containers' uid owns what they wrote; the test process is root here
    # or owns the folder, so removing it is enough.
    shutil.rmtree(folder, ignore_errors=True)


def start(
    pod: PodContainer,
    volumes: Path,
    agent: ApmTestAgent,
    *,
    services: dict[str, int] | None = None,
) -> ContainerRun:
    run = ContainerRun(
        pod,
        volume_dir=volumes / pod.workload,
        port=free_port(),
        env=agent.tracer_env(),
        services=services or {},
    )
    return run.start()


# --------------------------------------------------------------------------- images


def test_the_pod_specs_name_every_image(pods: dict[str, PodContainer]) -> None:
    images = {pod.image.removeprefix(containers.IMAGE_PREFIX) for pod in pods.values()}
    assert images == set(containers.IMAGE_BUILDS)
    for workload, image in WORKLOADS.items():
        assert pods[workload].image == containers.IMAGE_PREFIX + image


@pytest.mark.parametrize("image", sorted(containers.IMAGE_BUILDS))
def test_the_image_holds_only_its_service(built: dict[str, float], image: str) -> None:
    tag = containers.IMAGE_PREFIX + image
    others = [p for name, p in SERVICE_PACKAGES.items() if name != image]
    probe = (
        "import importlib.util, json;"
        f"names = {[*NEVER_IN_AN_IMAGE, *others, SERVICE_PACKAGES[image]]!r};"
        "print(json.dumps([n for n in names if importlib.util.find_spec(n)]))"
    )
    found = containers.run_once(tag, ["-c", probe], extra=["--entrypoint=/app/.venv/bin/python"])
    assert found.returncode == 0, f"image {tag}: import probe failed\n{found.stderr}"
    assert json.loads(found.stdout) == [SERVICE_PACKAGES[image]], f"image {tag}"
    listing = containers.run_once(
        tag,
        # The project's own files (third-party packages in .venv ship theirs).
        [
            "/app",
            *("-path", "/app/.venv", "-prune", "-o", "("),
            *("-name", "tests", "-o", "-name", "test_*.py", "-o", "-name", "conftest.py"),
            *(")", "-print"),
        ],
        extra=["--entrypoint=find"],
    )
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.strip() == "", f"image {tag} holds test code:\n{listing.stdout}"


@pytest.mark.parametrize("image", sorted(containers.IMAGE_BUILDS))
def test_the_image_runs_as_10001_and_help_exits_0(built: dict[str, float], image: str) -> None:
    tag = containers.IMAGE_PREFIX + image
    user = containers.docker("image", "inspect", "--format", "{{.Config.User}}", tag).strip()
    assert user == "10001:10001", f"image {tag}: USER {user!r}"
    helped = containers.run_once(tag, ["--help"])
    assert helped.returncode == 0, f"image {tag}: --help exit {helped.returncode}\n{helped.stderr}"
    assert "usage:" in helped.stdout, f"image {tag}: --help printed\n{helped.stdout}"


# --------------------------------------------------------------------------- pods


@pytest.fixture(scope="module")
def dependencies(
    built: dict[str, float],
    pods: dict[str, PodContainer],
    agent: ApmTestAgent,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, int]]:
    """books and tts-backend containers for the fronts: Service name -> loopback port."""
    folder = tmp_path_factory.mktemp("dependencies")
    books = start(pods["books"], folder, agent)
    backend = start(pods["tts-backend"], folder, agent)
    try:
        books.wait_probe("readinessProbe")
        backend.wait_probe("readinessProbe")
        assert books.port is not None and backend.port is not None
        yield {"books": books.port, "tts-backend": backend.port}
    finally:
        books.remove()
        backend.remove()


def check_runs_as_its_pod(run: ContainerRun) -> None:
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if probe in run.spec.container:
            run.wait_probe(probe)
    uid = run.process_uid()
    if uid != 10001:
        raise run.fail("uid", f"the process runs as uid {uid}, not 10001")
    status = run.terminate()
    if status != 0:
        raise run.fail("SIGTERM", f"exit status {status}, not 0")
    changed = run.diff()
    if changed:
        raise run.fail("docker diff", "wrote outside its volumes: " + ", ".join(changed))


@pytest.mark.parametrize("workload", ["books", "tts-backend"])
def test_a_dependency_container_runs_as_its_pod(
    built: dict[str, float],
    pods: dict[str, PodContainer],
    agent: ApmTestAgent,
    volumes: Path,
    workload: str,
) -> None:
    run = start(pods[workload], volumes, agent)
    try:
        check_runs_as_its_pod(run)
    finally:
        run.remove()


@pytest.mark.parametrize("workload", ["text-to-speech-v1", "text-to-speech-v2"])
def test_a_front_container_runs_as_its_pod_and_speaks(
    dependencies: dict[str, int],
    pods: dict[str, PodContainer],
    agent: ApmTestAgent,
    volumes: Path,
    workload: str,
) -> None:
    run = start(pods[workload], volumes, agent, services=dependencies)
    try:
        run.wait_probe("readinessProbe")
        created = httpx.post(
            f"http://127.0.0.1:{run.port}/speech",
            json={"text": "Hello from a container."},
            timeout=60,
        )
        if created.status_code not in (200, 201, 202):
            raise run.fail("POST /speech", f"{created.status_code} {created.text[:200]}")
        check_runs_as_its_pod(run)
    finally:
        run.remove()


def test_the_client_image_curls_and_polls_the_books_container(
    dependencies: dict[str, int], pods: dict[str, PodContainer], agent: ApmTestAgent, volumes: Path
) -> None:
    books_url = f"http://127.0.0.1:{dependencies['books']}"
    client = next(p for p in pods.values() if p.image == containers.IMAGE_PREFIX + "client")
    curl = containers.run_once(
        containers.IMAGE_PREFIX + "client",
        ["-fsS", f"{books_url}/books"],
        extra=["--entrypoint=curl", f"--user={client.user}"],
    )
    assert curl.returncode == 0, f"image speech-mesh/client: curl {books_url}/books\n{curl.stderr}"
    assert isinstance(json.loads(curl.stdout), list | dict)
    poll = ContainerRun(
        client,
        volume_dir=volumes / "client",
        env=agent.tracer_env(),
        services=dependencies,
        args=[
            "poll",
            f"--gateway={books_url}",
            f"--books={books_url}",
            "--mix=create_book=1,list_books=1",
            "--count=20",
            "--rate=0",
            "--max-error-rate=0",
        ],
    )
    with poll:
        status = containers.docker("wait", poll.name, timeout=client.grace_seconds + 120).strip()
        if status != "0":
            raise poll.fail("client poll", f"exit status {status}")
        changed = poll.diff()
        if changed:
            raise poll.fail("docker diff", ", ".join(changed))


def test_a_failing_build_names_the_image_and_the_step(docker_ready: None) -> None:
    broken = containers.ImageBuild("books", "no_such_service")
    with pytest.raises(ContainerError) as raised:
        containers.build_image(broken, tag="speech-mesh/broken-test")
    message = str(raised.value)
    assert "speech-mesh/broken-test" in message
    assert "failed at step" in message and "no_such_service" in message
