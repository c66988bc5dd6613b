"""The service Dockerfile: hadolint, COPY sources, uv layers, runtime user, entrypoint.

One parametrised ``services/Dockerfile`` (``ARG SERVICE``) builds every image;
each check runs on it as it reads for one service.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from repocheck import dockerfiles

ROOT = dockerfiles.REPO_ROOT
SERVICES = ("books", "tts_backend", "tts_v1", "tts_v2", "client")
DOCKERFILE = ROOT / dockerfiles.SERVICE_DOCKERFILE


def test_one_dockerfile_builds_every_service() -> None:
    assert dockerfiles.service_folders(ROOT) == sorted(SERVICES)
    assert sorted((ROOT / "services").glob("*/Dockerfile")) == [], "per-service Dockerfiles"


def test_the_dockerfile_passes_every_check_for_every_service() -> None:
    assert dockerfiles.check_service_dockerfile(ROOT) == []


@pytest.mark.parametrize("service", SERVICES)
def test_the_dockerfile_reads_right_for_each_service(service: str) -> None:
    sources = dockerfiles.copy_sources(DOCKERFILE, {"SERVICE": service})
    assert f"services/{service}/src" in sources
    others = [s for s in SERVICES if s != service]
    assert not any(f"services/{o}/src" in sources for o in others)
    assert "tools/testkit/src" not in sources and not any("tests" in s for s in sources)


def test_the_client_image_has_curl_for_the_in_mesh_walkthrough() -> None:
    final = dockerfiles.stages(DOCKERFILE.read_text(), {"SERVICE": "client"})[-1]
    assert any(
        s.keyword == "RUN"
        and "client" in s.arguments
        and "install" in s.arguments
        and "curl" in s.arguments
        for s in final
    )


def test_hadolint_reports_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get update && apt-get install -y curl\n")
    problems = dockerfiles.hadolint_problems(bad)
    assert any("DL3006" in p for p in problems), problems  # untagged base image


def test_dockerignore_keeps_out_caches_tests_and_data_only() -> None:
    ignore = ROOT / ".dockerignore"
    for kept_out in (
        ".git/config",
        ".venv/bin/python",
        "services/books/tests/test_x.py",
        "libs/servicekit/src/servicekit/__pycache__/x.pyc",
        "data/books.db",
        "k8s/apps",
    ):
        assert dockerignored(kept_out, ignore), kept_out
    for kept_in in (
        "uv.lock",
        "services/books/src/books/app.py",
        "protos/src/tts/v1/tts_pb2.py",
        "services/books/src/books/data.py",
    ):
        assert not dockerignored(kept_in, ignore), kept_in


def dockerignored(path: str, ignore: Path) -> bool:
    return dockerfiles.dockerignored(path, ignore)


# --------------------------------------------------------------------------- negative cases


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    """A copy of the repository's layout (symlinks) whose Dockerfile may be edited."""
    for entry in ROOT.iterdir():
        if entry.name not in {"services", ".git", ".venv"}:
            os.symlink(entry, tmp_path / entry.name)
    (tmp_path / "services").mkdir()
    for service in (ROOT / "services").iterdir():
        if service.name == "Dockerfile":
            shutil.copy(service, tmp_path / "services" / "Dockerfile")
        else:
            os.symlink(service, tmp_path / "services" / service.name)
    return tmp_path


def _edit(mirror: Path, old: str, new: str) -> Path:
    dockerfile = mirror / "services" / "Dockerfile"
    text = dockerfile.read_text()
    assert old in text
    dockerfile.write_text(text.replace(old, new, 1))
    return dockerfile


def _problems(mirror: Path, old: str, new: str) -> list[str]:
    dockerfile = _edit(mirror, old, new)
    return dockerfiles.check_dockerfile(dockerfile, mirror, service="books")


def test_the_unedited_mirror_passes(mirror: Path) -> None:
    assert (
        dockerfiles.check_dockerfile(mirror / "services/Dockerfile", mirror, service="books") == []
    )


def test_a_missing_copy_source_is_reported(mirror: Path) -> None:
    problems = _problems(
        mirror,
        "COPY services/${SERVICE}/src services/${SERVICE}/src",
        "COPY services/${SERVICE}/source services/${SERVICE}/src",
    )
    assert any("COPY source 'services/books/source' does not exist" in p for p in problems), (
        problems
    )


def test_a_copy_source_the_dockerignore_excludes_is_reported(mirror: Path) -> None:
    problems = _problems(
        mirror, "COPY protos/src protos/src", "COPY protos/src protos/src\nCOPY k8s k8s"
    )
    assert any("'k8s' is excluded by .dockerignore" in p for p in problems), problems


def test_an_entrypoint_that_is_no_console_script_is_reported(mirror: Path) -> None:
    problems = _problems(mirror, '"/app/.venv/bin/service-entrypoint"', '"/app/.venv/bin/book"')
    assert any("is not a console script of this service" in p for p in problems), problems


def test_an_entrypoint_link_no_step_makes_is_reported(mirror: Path) -> None:
    problems = _problems(mirror, 'ln -s "$(cat script)" /app/.venv/bin/service-entrypoint', "true")
    assert any("no build step links service-entrypoint" in p for p in problems), problems


def test_an_unknown_service_is_reported(mirror: Path) -> None:
    dockerfile = mirror / "services" / "Dockerfile"
    problems = dockerfiles.check_dockerfile(dockerfile, mirror, service="nope")
    assert problems == [
        "services/Dockerfile (SERVICE=nope): services/nope/pyproject.toml does not exist"
    ]


def test_running_as_root_is_reported(mirror: Path) -> None:
    problems = _problems(mirror, "USER 10001:10001", "USER root")
    assert any("must run as USER 10001:10001" in p for p in problems), problems


def test_a_member_missing_from_the_dependency_layer_is_reported(mirror: Path) -> None:
    problems = _problems(mirror, "COPY tools/devstack/pyproject.toml tools/devstack/\n", "")
    assert any("tools/devstack/pyproject.toml is not copied" in p for p in problems), problems


def test_source_before_the_dependency_layer_is_reported(mirror: Path) -> None:
    problems = _problems(
        mirror,
        "COPY pyproject.toml uv.lock ./",
        "COPY pyproject.toml uv.lock ./\nCOPY protos/src protos/src",
    )
    assert any("source is copied before the dependency layer" in p for p in problems), problems


def test_an_unexplained_hadolint_ignore_is_reported(mirror: Path) -> None:
    problems = _problems(mirror, "RUN groupadd", "# hadolint ignore=DL3008\nRUN groupadd")
    assert any("has no explaining comment above" in p for p in problems), problems


def test_an_unpinned_base_image_is_reported(mirror: Path) -> None:
    problems = _problems(
        mirror, "FROM python:3.11.14-slim-bookworm AS runtime", "FROM python:slim AS runtime"
    )
    assert any("'python:slim' is not pinned" in p for p in problems), problems
