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

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from devstack.services import Ports
from repocheck.k8s.apps import image_name
from repocheck.k8s.manifests import K8S_DIR
from testkit import containers
from testkit.containers import ContainerError, ContainerRun, PodContainer
from testkit.devstack import (
    binomial_interval,
    count_versions,
    free_stack_ports,
    stack_command,
    wait_for_output,
)
from testkit.k8s import repo_rendered
from testkit.process import REPO_ROOT, ServiceProcess, free_port
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
#: what an image's service never imports: servicekit's `http` extra (the HTTP
#: server) in the gRPC-only backend and the client, the client's `compare` extra
#: (`client compare` runs on a developer's machine, the pod only polls)
NOT_IMPORTED_BY = {
    "tts-backend": ("litestar", "granian", "faker"),
    "client": ("scipy", "numpy", "matplotlib", "datadog_api_client", "litestar", "granian"),
}

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


def container(
    pod: PodContainer,
    volumes: Path,
    agent: ApmTestAgent,
    *,
    services: dict[str, int] | None = None,
) -> ContainerRun:
    """The pod's container on a free port, traced to ``agent``: ``with`` starts and removes it."""
    return ContainerRun(
        pod,
        volume_dir=volumes / pod.workload,
        port=free_port(),
        env=agent.tracer_env(),
        services=services or {},
    )


# --------------------------------------------------------------------------- images


def test_the_pod_specs_name_every_image(pods: dict[str, PodContainer]) -> None:
    images = {image_name(pod.image).removeprefix(containers.IMAGE_PREFIX) for pod in pods.values()}
    assert images == set(containers.IMAGE_BUILDS)
    for workload, image in WORKLOADS.items():
        assert pods[workload].image == containers.IMAGE_BUILDS[image].pod_tag


@pytest.mark.parametrize("image", sorted(containers.IMAGE_BUILDS))
def test_the_image_holds_only_its_service(built: dict[str, float], image: str) -> None:
    tag = containers.IMAGE_PREFIX + image
    others = [p for name, p in SERVICE_PACKAGES.items() if name != image]
    if image not in {"tts-v1", "tts-v2"}:
        others.append("speech_front")  # the fronts' shared member, theirs only
    if image not in {"tts-v1", "tts-v2", "tts-backend"}:
        others.append("pcm_wav")  # WAV, the tts contract's audio format: theirs only
    probe = (
        "import importlib.util, json;"
        f"names = {[*NEVER_IN_AN_IMAGE, *NOT_IMPORTED_BY.get(image, ()), *others]!r}"
        f" + [{SERVICE_PACKAGES[image]!r}];"
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


def test_compare_in_the_client_image_names_the_extra_to_install(built: dict[str, float]) -> None:
    tag = containers.IMAGE_PREFIX + "client"
    compared = containers.run_once(tag, ["compare", "--agent", "http://127.0.0.1:9"])
    assert compared.returncode == 2, f"image {tag}: compare exit {compared.returncode}"
    lines = compared.stderr.strip().splitlines()
    assert len(lines) == 1, f"image {tag}: compare printed\n{compared.stderr}"
    assert "pip install 'polling-client[compare]'" in lines[0], lines[0]


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
    with (
        container(pods["books"], folder, agent) as books,
        container(pods["tts-backend"], folder, agent) as backend,
    ):
        books.wait_probe("readinessProbe")
        backend.wait_probe("readinessProbe")
        assert books.port is not None and backend.port is not None
        yield {"books": books.port, "tts-backend": backend.port}


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
    with container(pods[workload], volumes, agent) as run:
        check_runs_as_its_pod(run)


@pytest.mark.parametrize("workload", ["text-to-speech-v1", "text-to-speech-v2"])
def test_a_front_container_runs_as_its_pod_and_speaks(
    dependencies: dict[str, int],
    pods: dict[str, PodContainer],
    agent: ApmTestAgent,
    volumes: Path,
    workload: str,
) -> None:
    with container(pods[workload], volumes, agent, services=dependencies) as run:
        run.wait_probe("readinessProbe")
        created = httpx.post(
            f"http://127.0.0.1:{run.port}/speech",
            json={"text": "Hello from a container."},
            timeout=60,
        )
        if created.status_code not in (200, 201, 202):
            raise run.fail("POST /speech", f"{created.status_code} {created.text[:200]}")
        check_runs_as_its_pod(run)


def test_the_client_image_curls_and_polls_the_books_container(
    dependencies: dict[str, int], pods: dict[str, PodContainer], agent: ApmTestAgent, volumes: Path
) -> None:
    books_url = f"http://127.0.0.1:{dependencies['books']}"
    client = next(p for p in pods.values() if p.image == containers.IMAGE_BUILDS["client"].pod_tag)
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


# --------------------------------------------------------------------------- stack up --images


@pytest.fixture(scope="module")
def image_stack(
    built: dict[str, float], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServiceProcess, Ports]]:
    """``uv run stack up --images``: the services from their images, gateway and agent local."""
    root = tmp_path_factory.mktemp("image-stack")
    ports = free_stack_ports()
    command = stack_command(
        *ports.flags(), f"--data-dir={root / 'data'}", "--images", "--clean", "--ready-timeout=180"
    )
    proc = ServiceProcess(command, name="stack --images", cwd=REPO_ROOT)
    proc.start()
    try:
        wait_for_output(proc, r"Ctrl-C stops everything", timeout=240)
        yield proc, ports
    finally:
        proc.stop()


def _agent_spans(agent_url: str, trace_id: int, services: set[str]) -> list[dict[str, Any]]:
    low = trace_id & (2**64 - 1)
    deadline = time.monotonic() + 60
    spans: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        traces = httpx.get(f"{agent_url}/test/session/traces", timeout=10).json()
        spans = [s for trace in traces for s in trace if s["trace_id"] == low]
        if services <= {s["service"] for s in spans}:
            return spans
        time.sleep(0.2)
    raise AssertionError(f"trace {trace_id:032x}: only {sorted({s['service'] for s in spans})}")


def test_the_stack_from_images_does_the_walkthrough_split_and_traces(
    image_stack: tuple[ServiceProcess, Ports],
) -> None:
    _proc, ports = image_stack
    url = ports.gateway_url
    running = containers.docker("ps", "--format", "{{.Image}}").split()
    for image in ("books", "tts-backend", "tts-v1", "tts-v2"):
        assert containers.IMAGE_PREFIX + image in running, running
    # The original walkthrough, through the gateway.
    created = [
        httpx.post(
            f"{url}/books",
            content=f'{{ "author": "occupytheweb", "title": "{title}"}}',
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        for title in ("Network Basics for Hackers", "Linux Basics for Hackers")
    ]
    assert [r.status_code for r in created] == [201, 201], [r.text for r in created]
    listed = httpx.get(f"{url}/books", timeout=30).json()
    assert [b["title"] for b in listed] == [
        "Network Basics for Hackers",
        "Linux Basics for Hackers",
    ]
    spoken = httpx.post(f"{url}/speech", json={"book_id": 1}, timeout=120)
    assert spoken.status_code in (200, 201, 202), spoken.text
    # The 70/30 split.
    n = 400
    counts = asyncio.run(count_versions(url, n))
    low, high = binomial_interval(n, 0.3)
    assert counts.get("v1", 0) + counts.get("v2", 0) == n, counts
    assert low <= counts.get("v2", 0) <= high, (counts, (low, high))
    # One trace across text-to-speech, books and tts-backend, for v1 and for v2.
    agent_url = f"http://127.0.0.1:{ports.agent}"
    for version in ("v1", "v2"):
        # A book of its own: the fronts share the audio folder, and v2 would
        # answer a text v1 already spoke from its cache without tts-backend.
        book = httpx.post(
            f"{url}/books", json={"author": "trace", "title": f"Trace {version}"}, timeout=30
        ).json()
        trace_id = secrets.randbits(128) | (1 << 100)
        traceparent = f"00-{trace_id:032x}-{secrets.randbits(63) + 1:016x}-01"
        reply = httpx.post(
            f"{url}/speech",
            json={"book_id": book["id"]},
            headers={"x-canary": version, "traceparent": traceparent},
            timeout=120,
        )
        assert reply.status_code in (200, 201, 202) and reply.json()["version"] == version
        spans = _agent_spans(agent_url, trace_id, {"text-to-speech", "books", "tts-backend"})
        fronts = {s["meta"].get("version") for s in spans if s["service"] == "text-to-speech"}
        assert fronts == {version}, fronts


# --------------------------------------------------------------------------- stand-ins script


def test_the_standins_script_passes_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck is not installed (.ci/run installs the Debian package)")
    script = "scripts/build-standins"
    done = subprocess.run(
        [shellcheck, "-x", script], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_standins_use_the_hosts_debian_mirror(tmp_path: Path) -> None:
    # Sourcing the script defines its functions and runs nothing.
    done = subprocess.run(
        ["bash", "-c", "source scripts/build-standins && host_debian_mirror"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(("http://", "https://")), done.stdout


def test_without_docker_the_reason_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER", str(tmp_path / "no-docker"))
    reason = containers.docker_unavailable()
    assert reason is not None and "\n" not in reason
    assert "docker daemon not reachable" in reason and "no-docker" in reason
