"""``stack up --images``: the specs rewritten to ``docker run`` of each image (no Docker needed).

The run itself, from real images, is in tests/test_containers.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from devstack import images
from devstack.services import Ports, StackConfig, build_specs


def _config(tmp_path: Path, *, with_client: bool = False) -> StackConfig:
    return StackConfig(
        ports=Ports.from_base(20000),
        data_dir=tmp_path / "data",
        istio_dir=tmp_path / "istio",
        with_client=with_client,
    )


def test_our_services_run_from_their_images_as_their_pods_run(tmp_path: Path) -> None:
    config = _config(tmp_path, with_client=True)
    specs = {s.name: s for s in images.containerized(build_specs(config), config.data_dir, "7")}
    for name, (image, _) in images.IMAGES.items():
        command = specs[name].command
        assert command[1] == "run" and f"speech-mesh/{image}" in command, command
        for flag in (
            "--network=host",
            "--user=10001:10001",
            "--read-only",
            "--cap-drop=ALL",
            "--security-opt=no-new-privileges",
            f"--volume={config.data_dir.resolve()}:/data",
            f"--name=stack-7-{name}",
        ):
            assert flag in command, (name, flag)
        assert specs[name].env == {}
    books = specs["books"].command
    assert "--env=BOOKS_DB_PATH=/data/books.db" in books
    assert "--env=HOST=127.0.0.1" in books and "--env=PORT=20001" in books
    for front in ("tts-v1", "tts-v2"):
        assert "--env=AUDIO_DIR=/data/audio" in specs[front].command
    client = specs["client"].command
    assert client[client.index("speech-mesh/client") + 1] == "poll"


def test_the_gateway_and_the_agent_stay_local(tmp_path: Path) -> None:
    config = _config(tmp_path)
    before = {s.name: s for s in build_specs(config)}
    after = {s.name: s for s in images.containerized(build_specs(config), config.data_dir, "7")}
    for name in ("local-gateway", "apm-test-agent"):
        assert after[name] == before[name]


def test_a_missing_image_is_named_with_its_build_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER", "false")  # `false image inspect ...` fails: no image
    problems = images.missing_images(build_specs(_config(tmp_path)))
    assert len(problems) == 4
    assert (
        "image speech-mesh/tts-backend not found; build it with: docker build "
        "-f services/Dockerfile --build-arg SERVICE=tts_backend -t speech-mesh/tts-backend ."
    ) in problems


def test_the_data_dir_is_made_writable_for_the_containers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    images.prepare_data_dir(data)
    assert (data / "audio").is_dir()
