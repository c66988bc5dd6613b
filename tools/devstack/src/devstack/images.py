"""``stack up --images``: run the services from their container images instead of the venv.

The same specs (ports, peers, tags, the APM test agent, the gateway and its
Istio routing file) with each service's command replaced by ``docker run`` of
its image, the way its pod runs it: uid 10001, read-only root filesystem, all
capabilities dropped, no privilege escalation, ``/tmp`` a tmpfs. The host
network keeps every port on 127.0.0.1 as in the plain stack; the data
directory is mounted at ``/data`` (the books database, the fronts' shared
audio). The gateway and the APM test agent stay local processes, as in a
cluster they are not ours to build.

The images are built beforehand with the one Dockerfile:
``docker build -f services/Dockerfile --build-arg SERVICE=<folder> -t speech-mesh/<name> .``
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

from devstack.services import ServiceSpec

IMAGE_PREFIX = "speech-mesh/"
RUNTIME_USER = "10001:10001"
CONTAINER_DATA = "/data"
#: stack service -> (image name, service folder under services/)
IMAGES = {
    "books": ("books", "books"),
    "tts-backend": ("tts-backend", "tts_backend"),
    "tts-v1": ("tts-v1", "tts_v1"),
    "tts-v2": ("tts-v2", "tts_v2"),
    "client": ("client", "client"),
}
#: settings holding a path under the data directory
DATA_PATHS = ("BOOKS_DB_PATH", "AUDIO_DIR")


def docker_binary() -> str:
    """Debian's docker client (BuildKit built in) when present, else PATH's."""
    configured = os.environ.get("DOCKER")
    if configured:
        return configured
    if Path("/usr/bin/docker").is_file():
        return "/usr/bin/docker"
    return shutil.which("docker") or "docker"


def missing_images(specs: list[ServiceSpec]) -> list[str]:
    """One line per image the specs need that docker does not have (or docker's error)."""
    problems: list[str] = []
    for spec in specs:
        if spec.name not in IMAGES:
            continue
        image, folder = IMAGES[spec.name]
        try:
            found = subprocess.run(
                [docker_binary(), "image", "inspect", IMAGE_PREFIX + image],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return [f"docker is not usable: {error}"]
        if found.returncode != 0:
            problems.append(
                f"image {IMAGE_PREFIX}{image} not found; build it with: docker build "
                f"-f services/Dockerfile --build-arg SERVICE={folder} -t {IMAGE_PREFIX}{image} ."
            )
    return problems


def prepare_data_dir(data_dir: Path) -> None:
    """The data directory and its audio folder, writable by the containers' uid."""
    audio = data_dir / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    uid, gid = (int(part) for part in RUNTIME_USER.split(":"))
    for path in (data_dir, audio, *data_dir.glob("books.db*"), *audio.rglob("*")):
        if os.geteuid() == 0:
            os.chown(path, uid, gid)
        elif path.is_dir():
            path.chmod(0o777)


def containerized(specs: list[ServiceSpec], data_dir: Path, run_id: str) -> list[ServiceSpec]:
    """The specs with every service of ours run from its image (the rest unchanged)."""
    data = str(data_dir.resolve())
    result: list[ServiceSpec] = []
    for spec in specs:
        if spec.name not in IMAGES:
            result.append(spec)
            continue
        env = dict(spec.env)
        for name in DATA_PATHS:
            if name in env and env[name].startswith(data):
                env[name] = CONTAINER_DATA + env[name][len(data) :]
        command = [
            docker_binary(),
            "run",
            "--rm",
            f"--name=stack-{run_id}-{spec.name}",
            "--network=host",
            f"--user={RUNTIME_USER}",
            "--read-only",
            "--cap-drop=ALL",
            "--security-opt=no-new-privileges",
            "--tmpfs=/tmp:rw,size=64m,mode=1777",
            f"--volume={data}:{CONTAINER_DATA}",
            # The docker client forwards SIGTERM/SIGINT to the container.
            "--sig-proxy=true",
            *(f"--env={key}={value}" for key, value in sorted(env.items())),
            IMAGE_PREFIX + IMAGES[spec.name][0],
            *spec.args,
        ]
        # (The image runs its own warm parent; the stack restarts the container.)
        result.append(replace(spec, command=command, env={}, warm=False))
    return result


def remove_containers(run_id: str) -> None:
    """Remove what a stopped stack may have left (a docker client killed before its container)."""
    names = [f"stack-{run_id}-{name}" for name in IMAGES]
    subprocess.run(
        [docker_binary(), "rm", "--force", *names],
        capture_output=True,
        timeout=120,
        check=False,
    )
