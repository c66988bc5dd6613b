"""repocheck reads a Dockerfile and a .dockerignore as Docker does.

The parsing is dockerfile-parse's and pathspec's; these pin the places where
Docker's reading differs from the libraries' defaults (gitignore's, for
pathspec), so the bridge in ``repocheck.dockerfiles`` keeps Docker's meaning.
Expected values are Docker's (moby/patternmatcher, the Dockerfile reference).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from repocheck import dockerfiles


def ignored(tmp_path: Path, patterns: str, path: str) -> bool:
    dockerignore = tmp_path / ".dockerignore"
    dockerignore.write_text(patterns)
    return dockerfiles.dockerignored(path, dockerignore)


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        # A pattern is anchored at the context root (gitignore: at any depth
        # when it has no inner slash).
        ("data\n", "data/books.db", True),
        ("data\n", "services/books/data/books.db", False),
        ("*.md\n", "README.md", True),
        ("*.md\n", "docs/observability.md", False),
        # '**' is any number of directories, zero included.
        ("**/tests\n", "tests/test_x.py", True),
        ("**/tests\n", "services/books/tests/test_x.py", True),
        ("libs/**/*.pyc\n", "libs/x.pyc", True),
        ("libs/**/*.pyc\n", "libs/a/b/x.pyc", True),
        # A leading '/' or './' is cleaned away; '#' starts a comment only in
        # the first column.
        ("/k8s\n", "k8s/apps", True),
        ("./k8s\n", "k8s/apps", True),
        ("# k8s\n", "k8s/apps", False),
        # Go's '[!a]' is the set of '!' and 'a' (Go negates with '[^a]');
        # gitignore reads '[!a]' as a negation.
        ("[!a]b\n", "ab", True),
        ("[!a]b\n", "!b", True),
        ("[!a]b\n", "xb", False),
        ("[^a]b\n", "xb", True),
        ("[^a]b\n", "ab", False),
    ],
)
def test_dockerignore_patterns_read_as_docker_reads_them(
    tmp_path: Path, patterns: str, path: str, expected: bool
) -> None:
    assert ignored(tmp_path, patterns, path) is expected


def test_the_last_matching_line_wins_and_an_exception_reaches_into_an_ignored_directory(
    tmp_path: Path,
) -> None:
    # Git cannot re-include a file under an excluded directory; Docker can.
    patterns = "k8s\n!k8s/base/keep.yaml\nk8s/base/keep.yaml.bak\n"
    assert ignored(tmp_path, patterns, "k8s/apps/x.yaml")
    assert not ignored(tmp_path, patterns, "k8s/base/keep.yaml")
    assert ignored(tmp_path, patterns, "k8s/base/keep.yaml.bak")
    assert not ignored(tmp_path, patterns + "!k8s\n", "k8s/apps/x.yaml")


def test_no_dockerignore_ignores_nothing(tmp_path: Path) -> None:
    assert not dockerfiles.dockerignored("k8s", tmp_path / ".dockerignore")


@pytest.mark.parametrize("pattern", ["a**b", "**.pyc", "libs**/x", "a/b**"])
def test_a_double_star_inside_a_segment_is_reported(tmp_path: Path, pattern: str) -> None:
    # Docker reads 'a**b' as 'a', any directories, 'b' (it matches 'a/x/b');
    # gitignore as 'a*b'. Not bridged: reported instead ('a/b**' at the end
    # of a pattern reads the same in both, so only the inner ones are).
    dockerignore = tmp_path / ".dockerignore"
    dockerignore.write_text(f"k8s\n{pattern}\n")
    problems = dockerfiles.dockerignore_problems(dockerignore)
    if pattern.endswith("**"):
        assert problems == []
    else:
        assert problems == [
            f".dockerignore line 2: {pattern!r} has a '**' that is not a whole path "
            "segment (Docker reads it as any directories, pathspec as '*')"
        ]


def test_the_repository_check_reports_such_a_pattern(tmp_path: Path) -> None:
    root = dockerfiles.REPO_ROOT
    for entry in root.iterdir():
        if entry.name not in {".dockerignore", ".git", ".venv"}:
            os.symlink(entry, tmp_path / entry.name)
    (tmp_path / ".dockerignore").write_text((root / ".dockerignore").read_text() + "a**b\n")
    problems = dockerfiles.check_service_dockerfile(tmp_path)
    assert [p for p in problems if "'**'" in p] == [
        f".dockerignore line {len((tmp_path / '.dockerignore').read_text().splitlines())}: "
        "'a**b' has a '**' that is not a whole path segment (Docker reads it as any "
        "directories, pathspec as '*')"
    ]


# --------------------------------------------------------------------------- build arguments

SCOPED = """\
ARG BASE=3.11.14
FROM python:${BASE}-slim AS first
COPY services/${SERVICE}/src /a/
ARG SERVICE
COPY services/${SERVICE}/src /b/
ARG FLAVOUR=plain
RUN echo "$FLAVOUR $SERVICE $(cat package) $HOME"
FROM python:${BASE}-slim
COPY services/$SERVICE/src /c/
"""


def test_a_build_argument_is_substituted_where_its_arg_is_in_scope() -> None:
    steps = dockerfiles.instructions(SCOPED, {"SERVICE": "books"})
    by_line = {s.line: s.arguments for s in steps}
    assert by_line[2] == "python:3.11.14-slim AS first"  # ARG above the first FROM
    assert by_line[3] == "services/${SERVICE}/src /a/"  # before its ARG line
    assert by_line[5] == "services/books/src /b/"
    assert by_line[7] == 'echo "plain books $(cat package) $HOME"'  # default; shell kept
    assert by_line[9] == "services/$SERVICE/src /c/"  # a new stage: no ARG SERVICE
    assert by_line[8] == "python:3.11.14-slim"


def test_an_arg_given_no_value_stays_literal() -> None:
    steps = dockerfiles.instructions(SCOPED)
    assert [s.arguments for s in steps if s.line == 5] == ["services/${SERVICE}/src /b/"]


def test_continuations_comments_and_env_names() -> None:
    text = (
        "FROM python:3.11.14-slim\n"
        "# a comment\n"
        "ENV A=1 \\\n"
        "    # inside a continuation\n"
        '    B="two words"\n'
        "COPY --chown=1:1 a b/\n"
    )
    steps = dockerfiles.instructions(text)
    assert [(s.line, s.keyword) for s in steps] == [(1, "FROM"), (3, "ENV"), (6, "COPY")]
    assert steps[1].env == ("A", "B")
    assert dockerfiles.stages(text)[0][0].arguments == "python:3.11.14-slim"
