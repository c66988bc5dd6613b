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


# (old text, new text, a fragment of the problem the edit must raise)
BROKEN_EDITS = [
    pytest.param(
        "COPY services/${SERVICE}/src services/${SERVICE}/src",
        "COPY services/${SERVICE}/source services/${SERVICE}/src",
        "COPY source 'services/books/source' does not exist",
        id="missing-copy-source",
    ),
    pytest.param(
        "COPY protos/src protos/src",
        "COPY protos/src protos/src\nCOPY k8s k8s",
        "'k8s' is excluded by .dockerignore",
        id="copy-source-dockerignored",
    ),
    pytest.param(
        '"/app/.venv/bin/service-entrypoint"',
        '"/app/.venv/bin/book"',
        "is not a console script of this service",
        id="entrypoint-no-console-script",
    ),
    pytest.param(
        'ln -s "$(cat script)" /app/.venv/bin/service-entrypoint',
        "true",
        "no build step links service-entrypoint",
        id="entrypoint-link-never-made",
    ),
    pytest.param("USER 10001:10001", "USER root", "must run as USER 10001:10001", id="root"),
    pytest.param(
        "COPY tools/repomodel/pyproject.toml tools/repomodel/\n",
        "",
        "tools/repomodel/pyproject.toml is not copied",
        id="member-missing-from-dependency-layer",
    ),
    pytest.param(
        "COPY pyproject.toml uv.lock ./",
        "COPY pyproject.toml uv.lock ./\nCOPY protos/src protos/src",
        "source is copied before the dependency layer",
        id="source-before-dependency-layer",
    ),
    pytest.param(
        "RUN groupadd",
        "# hadolint ignore=DL3008\nRUN groupadd",
        "has no explaining comment above",
        id="unexplained-hadolint-ignore",
    ),
    pytest.param(
        "FROM python:3.11.14-slim-bookworm AS runtime",
        "FROM python:slim AS runtime",
        "'python:slim' is not pinned",
        id="unpinned-base-image",
    ),
]


@pytest.mark.parametrize(("old", "new", "reported"), BROKEN_EDITS)
def test_a_broken_dockerfile_is_reported(mirror: Path, old: str, new: str, reported: str) -> None:
    problems = _problems(mirror, old, new)
    assert any(reported in p for p in problems), problems


def test_an_unknown_service_is_reported(mirror: Path) -> None:
    dockerfile = mirror / "services" / "Dockerfile"
    problems = dockerfiles.check_dockerfile(dockerfile, mirror, service="nope")
    assert problems == [
        "services/Dockerfile (SERVICE=nope): services/nope/pyproject.toml does not exist"
    ]
