"""Build the service images with Docker and run each container the way its pod runs.

The pod spec is read from the rendered ``k8s/`` (never a second copy): env,
user and group, read-only root filesystem, dropped capabilities, no privilege
escalation, emptyDir volumes as tmpfs and persistent volumes as host folders.
Containers use the host network and listen on free ports of 127.0.0.1 only
(the ``PORT``/``HOST`` settings of the pod are overridden), so every request
stays on loopback.

    with ContainerRun(pod_container("books"), port=free_port(), volumes=...) as books:
        books.wait_probes()

Every failure names the image, the step and the last lines of its log.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from repocheck.dockerfiles import SERVICE_DOCKERFILE
from repocheck.tilt import IMAGE_PREFIX, IMAGE_TAG, SERVICE_IMAGES

from testkit.process import REPO_ROOT, Started

#: image name -> service folder under services/ (the Dockerfile's SERVICE), as in the Tiltfile
SERVICE_FOLDERS = SERVICE_IMAGES
#: The base images the Dockerfiles name; scripts/build-standins makes local
#: stand-ins for them where no registry is reachable.
BASE_IMAGES = ("python:3.11.14-slim-bookworm", "ghcr.io/astral-sh/uv:0.13.9")
LOG_TAIL = 30
CLUSTER_ADDRESS = re.compile(r"\b([a-z0-9-]+)\.[a-z0-9-]+\.svc\.cluster\.local(?::\d+)?")


class ContainerError(AssertionError):
    """A build or a container step failed; the message names image, step and log tail."""


def tail(text: str, lines: int = LOG_TAIL) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def docker_binary() -> str | None:
    """A docker client that builds with BuildKit: ``$DOCKER``, Debian's, else PATH's."""
    configured = os.environ.get("DOCKER")
    if configured:
        return configured
    if Path("/usr/bin/docker").is_file():
        # Debian's docker.io client has BuildKit built in; another client found
        # first on PATH may lack the buildx plugin.
        return "/usr/bin/docker"
    return shutil.which("docker")


def docker_unavailable() -> str | None:
    """Why containers cannot run here (one line), or None when they can."""
    docker = docker_binary()
    if docker is None:
        return "no docker client (install docker.io)"
    try:
        info = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"docker daemon not reachable: {error}"
    if info.returncode != 0:
        return f"docker daemon not reachable ({docker} info: {tail(info.stderr, 1)})"
    missing = [image for image in BASE_IMAGES if not image_exists(image)]
    if missing:
        return f"base images missing: {', '.join(missing)} (run scripts/build-standins)"
    return None


def docker(*args: str, timeout: float = 120.0, check: bool = True) -> str:
    """Run a docker command; its stdout. Raises ContainerError with stderr when it fails."""
    completed = subprocess.run(
        [docker_binary() or "docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and completed.returncode != 0:
        raise ContainerError(
            f"docker {' '.join(args[:3])}: exit {completed.returncode}\n"
            f"{tail(completed.stdout + completed.stderr)}"
        )
    return completed.stdout


def image_exists(image: str) -> bool:
    completed = subprocess.run(
        [docker_binary() or "docker", "image", "inspect", image],
        capture_output=True,
        check=False,
    )
    return completed.returncode == 0


# --------------------------------------------------------------------------- building


@dataclass(frozen=True)
class ImageBuild:
    """How one service image is built (the same recipe as the Tiltfile's)."""

    image: str
    folder: str

    @property
    def tag(self) -> str:
        return IMAGE_PREFIX + self.image

    @property
    def pod_tag(self) -> str:
        """The fixed tag the pod specs in k8s/ name (the same image, tagged twice)."""
        return f"{self.tag}:{IMAGE_TAG}"

    @property
    def dockerfile(self) -> str:
        return SERVICE_DOCKERFILE

    @property
    def build_args(self) -> dict[str, str]:
        return {"SERVICE": self.folder}

    def command(self, *, tag: str | None = None) -> list[str]:
        arguments = [f"--build-arg={k}={v}" for k, v in self.build_args.items()]
        return [
            docker_binary() or "docker",
            "build",
            "--network=host",  # the host's egress to the package index
            "--progress=plain",
            f"--file={self.dockerfile}",
            *arguments,
            *([f"--tag={tag}"] if tag else [f"--tag={self.tag}", f"--tag={self.pod_tag}"]),
            ".",
        ]


IMAGE_BUILDS = {name: ImageBuild(name, folder) for name, folder in SERVICE_FOLDERS.items()}


def build_image(build: ImageBuild, *, tag: str | None = None) -> float:
    """Build one image from the repository root; seconds it took.

    On failure: ContainerError naming the image, the step that failed (the
    last ``#N [stage i/n] ...`` line BuildKit printed) and the log's last lines.
    """
    started = time.monotonic()
    completed = subprocess.run(
        build.command(tag=tag),
        cwd=REPO_ROOT,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if completed.returncode != 0:
        log = completed.stdout + completed.stderr
        steps = re.findall(r"^#\d+ \[[^\]]+\] .*$", log, flags=re.MULTILINE)
        step = steps[-1] if steps else "(before any step)"
        raise ContainerError(
            f"image {tag or build.tag}: docker build failed at step {step}\n{tail(log)}"
        )
    return time.monotonic() - started


# --------------------------------------------------------------------------- pod specs


@dataclass
class PodContainer:
    """One container of a workload in the rendered k8s/, with its pod's settings."""

    workload: str
    pod: dict[str, Any]
    container: dict[str, Any]
    labels: dict[str, str]

    @property
    def image(self) -> str:
        return str(self.container["image"])

    @property
    def grace_seconds(self) -> int:
        return int(self.pod.get("terminationGracePeriodSeconds", 30))

    @property
    def user(self) -> str:
        pod_security = self.pod.get("securityContext", {})
        own = self.container.get("securityContext", {})
        uid = own.get("runAsUser", pod_security.get("runAsUser"))
        gid = own.get("runAsGroup", pod_security.get("runAsGroup", uid))
        if uid is None:
            raise ContainerError(f"{self.workload}: the pod sets no runAsUser")
        return f"{uid}:{gid}"

    def port_numbers(self) -> dict[str, int]:
        return {
            str(p.get("name", p["containerPort"])): int(p["containerPort"])
            for p in self.container.get("ports", [])
        }

    def env(self) -> dict[str, str]:
        """The container's env as the kubelet resolves it (field refs from the pod)."""
        resolved: dict[str, str] = {}
        for item in self.container.get("env", []):
            name = str(item["name"])
            if "value" in item:
                resolved[name] = str(item["value"])
                continue
            field_path = item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath", "")
            label = re.fullmatch(r"metadata\.labels\['([^']+)'\]", field_path)
            if label:
                resolved[name] = self.labels.get(label.group(1), "")
            elif field_path in {"status.hostIP", "status.podIP"}:
                resolved[name] = "127.0.0.1"
            elif field_path == "metadata.name":
                resolved[name] = f"{self.workload}-0"
            # other sources (optional secrets) are absent here, as in a cluster without them
        return resolved

    def probe_budget(self, probe: Mapping[str, Any]) -> float:
        period = float(probe.get("periodSeconds", 10))
        failures = float(probe.get("failureThreshold", 3))
        return float(probe.get("initialDelaySeconds", 0)) + period * failures


def pod_containers(rendered: Sequence[Mapping[str, Any]]) -> dict[str, PodContainer]:
    """Each ``speech-mesh/*`` container of the rendered objects, by workload name."""
    found: dict[str, PodContainer] = {}
    for obj in rendered:
        if obj.get("kind") not in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            continue
        template = obj["spec"]["template"]
        for container in template["spec"].get("containers", []):
            if str(container.get("image", "")).startswith(IMAGE_PREFIX):
                found[obj["metadata"]["name"]] = PodContainer(
                    workload=obj["metadata"]["name"],
                    pod=template["spec"],
                    container=container,
                    labels=dict(template["metadata"].get("labels", {})),
                )
    return found


# --------------------------------------------------------------------------- running


@dataclass
class ContainerRun(Started):
    """A container started from a pod spec with ``docker run``, removed on exit.

    ``port``: the loopback port replacing the pod's container port (the env
    variable holding that port, ``PORT``, is overridden, and ``HOST`` is
    127.0.0.1). ``services``: Kubernetes Service name -> loopback port, for
    the cluster addresses in the env (``books.apps.svc.cluster.local:80``
    becomes ``127.0.0.1:<port>``). ``env``: further overrides. ``volume_dir``: where the host
    folders for persistent volumes go.
    """

    spec: PodContainer
    volume_dir: Path
    port: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    services: Mapping[str, int] = field(default_factory=dict)
    args: Sequence[str] | None = None
    image: str | None = None
    name: str = field(default_factory=lambda: f"sm-test-{uuid.uuid4().hex[:10]}")
    started: bool = False

    def command(self) -> list[str]:
        spec = self.spec
        environ = spec.env()
        if self.port is not None:
            for original in spec.port_numbers().values():
                for key, value in list(environ.items()):
                    if value == str(original):
                        environ[key] = str(self.port)
            environ["HOST"] = "127.0.0.1"
        for key, value in list(environ.items()):
            environ[key] = CLUSTER_ADDRESS.sub(
                lambda m: self._local_address(m.group(1), m.group(0)), value
            )
        environ.update(self.env)
        security = spec.container.get("securityContext", {})
        arguments = [
            "run",
            "--detach",
            f"--name={self.name}",
            "--network=host",
            f"--user={spec.user}",
        ]
        fs_group = spec.pod.get("securityContext", {}).get("fsGroup")
        if fs_group is not None:
            arguments.append(f"--group-add={fs_group}")
        if security.get("readOnlyRootFilesystem"):
            arguments.append("--read-only")
        for capability in security.get("capabilities", {}).get("drop", []):
            arguments.append(f"--cap-drop={capability}")
        if security.get("allowPrivilegeEscalation") is False:
            arguments.append("--security-opt=no-new-privileges")
        arguments += self._volume_arguments()
        for key, value in sorted(environ.items()):
            arguments.append(f"--env={key}={value}")
        arguments.append(self.image or spec.image)
        arguments += list(self.args if self.args is not None else spec.container.get("args", []))
        return arguments

    def _local_address(self, service: str, original: str) -> str:
        if service not in self.services:
            return original
        return f"127.0.0.1:{self.services[service]}"

    def _volume_arguments(self) -> list[str]:
        volumes = {v["name"]: v for v in self.spec.pod.get("volumes", [])}
        arguments: list[str] = []
        for mount in self.spec.container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            path = mount["mountPath"]
            read_only = ":ro" if mount.get("readOnly") else ""
            if "emptyDir" in volume:
                size = str(volume["emptyDir"].get("sizeLimit", "64Mi")).replace("Mi", "m")
                arguments.append(f"--tmpfs={path}:rw,size={size},mode=1777")
            else:
                # A persistent volume, secret or config map: a host folder
                # owned by the pod's fsGroup (what the kubelet does).
                host = self.volume_dir / mount["name"]
                host.mkdir(parents=True, exist_ok=True)
                group = self.spec.pod.get("securityContext", {}).get("fsGroup")
                if group is not None:
                    os.chown(host, int(self.spec.user.split(":")[0]), int(group))
                arguments.append(f"--volume={host}:{path}{read_only}")
        return arguments

    def start(self) -> ContainerRun:
        docker(*self.command())
        self.started = True
        return self

    def logs(self) -> str:
        return docker("logs", self.name, check=False, timeout=60) if self.started else ""

    def fail(self, step: str, detail: str = "") -> ContainerError:
        return ContainerError(
            f"image {self.image or self.spec.image} ({self.spec.workload}): {step}"
            f"{': ' + detail if detail else ''}\n--- last log lines:\n{tail(self.logs())}"
        )

    def state(self) -> dict[str, Any]:
        import json

        raw = docker("inspect", "--format", "{{json .State}}", self.name)
        state: dict[str, Any] = json.loads(raw)
        return state

    def running(self) -> bool:
        return bool(self.state().get("Running"))

    def _probe_port(self, probe: Mapping[str, Any]) -> int:
        port = (probe.get("httpGet") or probe.get("grpc") or probe.get("tcpSocket") or {})["port"]
        if self.port is not None:
            return self.port
        return self.spec.port_numbers().get(str(port), int(port) if str(port).isdigit() else 0)

    def probe_once(self, probe: Mapping[str, Any]) -> bool:
        if "exec" in probe:  # the kubelet runs the command in the container: exit 0 passes
            command = [str(a) for a in probe["exec"].get("command") or []]
            ran = subprocess.run(
                [docker_binary() or "docker", "exec", self.name, *command],
                capture_output=True,
                timeout=float(probe.get("timeoutSeconds", 1)) + 30.0,
                check=False,
            )
            return ran.returncode == 0
        port = self._probe_port(probe)
        if "httpGet" in probe:
            with contextlib.suppress(httpx.HTTPError):
                url = f"http://127.0.0.1:{port}{probe['httpGet'].get('path', '/')}"
                return 200 <= httpx.get(url, timeout=2.0).status_code < 400
            return False
        if "grpc" in probe:
            import grpc
            from grpc_health.v1 import health_pb2, health_pb2_grpc

            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                with contextlib.suppress(grpc.RpcError):
                    request = health_pb2.HealthCheckRequest(
                        service=probe["grpc"].get("service", "")
                    )
                    reply = stub.Check(request, timeout=2.0)
                    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
            return False
        raise self.fail("probe", f"unsupported probe {probe!r}")

    def wait_probe(self, kind: str) -> float:
        """Poll the pod's ``kind`` probe until it passes within its budget; seconds taken.

        The budget is the probe's own (startup: initial delay + period x
        failure threshold), plus the startup probe's for the others, as the
        kubelet only starts them after the startup probe passed.
        """
        probe = self.spec.container.get(kind)
        if probe is None:
            raise self.fail(kind, "the pod defines no such probe")
        budget = self.spec.probe_budget(probe)
        if kind != "startupProbe" and "startupProbe" in self.spec.container:
            budget += self.spec.probe_budget(self.spec.container["startupProbe"])
        started = time.monotonic()
        while time.monotonic() - started < budget:
            if not self.running():
                raise self.fail(kind, f"container exited ({self.state().get('ExitCode')})")
            if self.probe_once(probe):
                return time.monotonic() - started
            time.sleep(0.2)
        raise self.fail(kind, f"did not pass within its budget of {budget:.0f}s")

    def pid(self) -> int:
        return int(self.state()["Pid"])

    def process_uid(self) -> int:
        status = Path(f"/proc/{self.pid()}/status").read_text()
        match = re.search(r"^Uid:\s+(\d+)", status, flags=re.MULTILINE)
        if match is None:
            raise self.fail("uid", "no Uid line in /proc status")
        return int(match.group(1))

    def diff(self) -> list[str]:
        """``docker diff``: what the container changed outside its volumes.

        The mount points themselves (and their parent folders), which the
        runtime creates before the process starts, are not the container's writes.
        """
        mounts = [
            # /var/run is a symlink to /run in the Debian base: diff shows the target.
            Path(re.sub(r"^/var/run(?=/|$)", "/run", m["mountPath"]))
            for m in self.spec.container.get("volumeMounts", [])
        ]
        made_by_runtime = {str(m) for m in mounts} | {str(p) for m in mounts for p in m.parents}
        changed = [line.strip() for line in docker("diff", self.name).splitlines() if line.strip()]
        return [line for line in changed if line.split(maxsplit=1)[-1] not in made_by_runtime]

    def terminate(self) -> int:
        """SIGTERM, then wait up to the pod's grace period; the exit status."""
        docker("kill", "--signal=TERM", self.name)
        try:
            status = docker("wait", self.name, timeout=self.spec.grace_seconds + 5)
        except subprocess.TimeoutExpired as error:
            raise self.fail(
                "SIGTERM",
                f"still running after terminationGracePeriodSeconds={self.spec.grace_seconds}",
            ) from error
        return int(status.strip())

    def remove(self) -> None:
        if self.started:
            docker("rm", "--force", self.name, check=False)
            self.started = False

    def stop(self) -> None:
        """Remove the container, as leaving its ``with`` block does."""
        self.remove()


def run_once(
    image: str, arguments: Sequence[str], *, extra: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """``docker run --rm`` as the image's user on the host network; the finished process."""
    return subprocess.run(
        [
            docker_binary() or "docker",
            "run",
            "--rm",
            "--network=host",
            "--read-only",
            "--cap-drop=ALL",
            "--security-opt=no-new-privileges",
            *extra,
            image,
            *arguments,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
