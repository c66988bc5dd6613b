"""Service Dockerfiles: hadolint, COPY sources, uv layers, runtime user, entrypoint."""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from pathlib import Path

import pytest
from repocheck import dockerfiles

ROOT = dockerfiles.REPO_ROOT
SERVICES = ("books", "tts_backend", "tts_v1", "tts_v2", "client")


def test_every_service_has_a_dockerfile() -> None:
    assert [p.parent.name for p in dockerfiles.service_dockerfiles(ROOT)] == sorted(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_the_dockerfile_passes_every_check(service: str) -> None:
    assert dockerfiles.check_dockerfile(ROOT / "services" / service / "Dockerfile", ROOT) == []


def test_the_client_image_has_curl_for_the_in_mesh_walkthrough() -> None:
    final = dockerfiles.stages((ROOT / "services/client/Dockerfile").read_text())[-1]
    assert any(
        s.keyword == "RUN" and "install" in s.arguments and "curl" in s.arguments for s in final
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
    """A copy of the repository's layout (symlinks) whose Dockerfiles may be edited."""
    for entry in ROOT.iterdir():
        if entry.name not in {"services", ".git", ".venv"}:
            os.symlink(entry, tmp_path / entry.name)
    for service in (ROOT / "services").iterdir():
        target = tmp_path / "services" / service.name
        target.mkdir(parents=True)
        for entry in service.iterdir():
            if entry.name == "Dockerfile":
                shutil.copy(entry, target / entry.name)
            else:
                os.symlink(entry, target / entry.name)
    return tmp_path


def _edit(mirror: Path, old: str, new: str) -> Path:
    dockerfile = mirror / "services" / "books" / "Dockerfile"
    text = dockerfile.read_text()
    assert old in text
    dockerfile.write_text(text.replace(old, new, 1))
    return dockerfile


def _problems(mirror: Path, old: str, new: str) -> list[str]:
    dockerfile = _edit(mirror, old, new)
    return dockerfiles.check_dockerfile(dockerfile, mirror)


def test_the_unedited_mirror_passes(mirror: Path) -> None:
    assert dockerfiles.check_dockerfile(mirror / "services/books/Dockerfile", mirror) == []


def test_a_missing_copy_source_is_reported(mirror: Path) -> None:
    problems = _problems(
        mirror,
        "COPY services/books/src services/books/src",
        "COPY services/books/source services/books/src",
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
    problems = _problems(mirror, '"/app/.venv/bin/books"', '"/app/.venv/bin/book"')
    assert any("is not a console script of this service" in p for p in problems), problems


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


def _normalized(service: str) -> list[str]:
    """A Dockerfile's instructions with this service's own names abstracted away."""
    dockerfile = ROOT / "services" / service / "Dockerfile"
    project = tomllib.loads((dockerfile.parent / "pyproject.toml").read_text())["project"]
    (script,) = project["scripts"]
    lines = []
    for step in dockerfiles.instructions(dockerfile.read_text()):
        text = f"{step.keyword} {step.arguments}"
        text = text.replace(f"services/{service}/src", "services/{service}/src")
        text = text.replace(f"--package {project['name']}", "--package {package}")
        text = text.replace(f"/app/.venv/bin/{script}", "/app/.venv/bin/{script}")
        if "apt-get" in text or step.keyword == "EXPOSE":
            continue  # the client's curl; the port of each service
        if "libs/speech_front/src" in text and "speech-front" in project["dependencies"]:
            continue  # the fronts' own shared member (books and the others do not carry it)
        lines.append(re.sub(r" \\?HOST=0\.0\.0\.0 PORT=\d+", "", text))
    return lines


@pytest.mark.parametrize("service", [s for s in SERVICES if s != "books"])
def test_every_dockerfile_is_the_same_recipe_as_books(service: str) -> None:
    # One Dockerfile per service is the layout; this keeps them from drifting.
    assert _normalized(service) == _normalized("books")
