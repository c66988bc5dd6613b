"""What an evaluation records: the calls, their problems, the images built, the manifests."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from repocheck.tilt import goparse
from repocheck.tilt.api import BoundCall

# ImageBuild.dockerfile of a build from dockerfile_contents= (no file to read).
INLINE_DOCKERFILE = "<dockerfile_contents>"


def _normal_ref(ref: str) -> str:
    """reference.FamiliarString(ParseNormalizedNamed(ref)): one spelling per image.

    ``x``, ``docker.io/x`` and ``docker.io/library/x`` are one image;
    ``a/x`` and ``docker.io/library/a/x`` are not.
    """
    domain, remainder = goparse.split_docker_domain(ref)
    if domain != "docker.io":
        return f"{domain}/{remainder}"
    short = remainder.removeprefix("library/")
    return short if "/" not in short.split(":")[0] else remainder


@dataclass(frozen=True)
class ImageBuild:
    ref: str
    context: str
    dockerfile: str
    only: tuple[str, ...]
    live_update: tuple[Mapping[str, Any], ...]
    entrypoint: list[str]
    restart: bool
    restart_file: str | None
    build_args: tuple[tuple[str, str], ...] = ()


@dataclass
class TiltfileResult:
    calls: list[BoundCall] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    failure: str | None = None
    images: list[ImageBuild] = field(default_factory=list)
    manifests: list[dict[str, Any]] = field(default_factory=list)
    # Every image ref defined so far (docker_build, and both refs of each
    # docker_build_with_restart): Tilt refuses a second definition.
    defined_refs: list[str] = field(default_factory=list)

    def define_ref(self, function: str, ref: str) -> str | None:
        """Record ``ref``; the problem Tilt reports if it was already defined."""
        normal = _normal_ref(ref)
        if normal in self.defined_refs:
            # build_index.go: %q of container.FamiliarString(ref)
            return f'{function}(): Image for ref "{normal}" has already been defined'
        self.defined_refs.append(normal)
        return None

    def called(self, name: str) -> list[BoundCall]:
        return [c for c in self.calls if c.name == name]


def _command(value: object) -> list[str]:
    """Tilt's entrypoint: a list, or a string Tilt runs with ``sh -c``."""
    if isinstance(value, str):
        return ["sh", "-c", value]
    return [str(word) for word in value] if isinstance(value, list) else []


def image_from(a: Mapping[str, Any], *, restart: bool) -> ImageBuild:
    only = a.get("only") or []
    if a.get("dockerfile_contents") is not None:
        dockerfile = INLINE_DOCKERFILE
    else:
        dockerfile = str(a.get("dockerfile") or posixpath.join(str(a["context"]), "Dockerfile"))
    return ImageBuild(
        ref=str(a["ref"]),
        context=str(a["context"]),
        dockerfile=dockerfile,
        only=tuple([only] if isinstance(only, str) else only),
        live_update=tuple(a.get("live_update") or ()),
        entrypoint=_command(a.get("entrypoint")),
        restart=restart,
        restart_file=a.get("restart_file") if restart else None,
        build_args=tuple((str(k), str(v)) for k, v in dict(a.get("build_args") or {}).items()),
    )
