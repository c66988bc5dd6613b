"""Ask the applications themselves: their settings and the routes they serve.

An image is mapped to its Python package (the one thing written here); the
settings loader and the route list come from the package: ``load_settings``
from ``<pkg>.settings`` and ``create_app(settings)`` from ``<pkg>.app`` (the
convention every HTTP service follows), so a route added or removed in the
code is what the checks see.
"""

from __future__ import annotations

import importlib
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from servicekit.settings import Env, SettingsError

# image (without tag) -> Python package of the service it runs
IMAGE_PACKAGES: dict[str, str] = {
    "speech-mesh/books": "books",
    "speech-mesh/tts-backend": "tts_backend",
    "speech-mesh/tts-v1": "tts_v1",
    "speech-mesh/tts-v2": "tts_v2",
    "speech-mesh/client": "polling_client",
}

_PARAMETER = re.compile(r"\{[^}/]+\}")


@dataclass(frozen=True)
class Route:
    """One route template the app serves (``/audio/{name:str}``) and its methods."""

    template: str
    methods: frozenset[str]


def _route_regex(template: str) -> re.Pattern[str]:
    """``/audio/{name:str}`` -> ``/audio/[^/]+``."""
    pieces: list[str] = []
    position = 0
    for match in _PARAMETER.finditer(template):
        pieces.append(re.escape(template[position : match.start()]))
        # Litestar's `{x:path}` spans slashes; any other parameter is one segment.
        pieces.append(".*" if match.group().endswith(":path}") else "[^/]+")
        position = match.end()
    pieces.append(re.escape(template[position:]))
    return re.compile("".join(pieces))


def image_name(image: str) -> str:
    """``speech-mesh/books:dev`` -> ``speech-mesh/books`` (a registry port is kept)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name[: len(name) - len(last)] + last.split(":", 1)[0]


def package_for(image: str) -> str | None:
    return IMAGE_PACKAGES.get(image_name(image))


def load_settings(package: str, environ: Mapping[str, str]) -> Any:
    """The package's settings from ``environ``; raises SettingsError for a bad value."""
    module = importlib.import_module(f"{package}.settings")
    return module.load_settings(Env(dict(environ)))


def served_routes(package: str, environ: Mapping[str, str]) -> list[Route] | None:
    """The routes ``<package>.app.create_app(settings)`` serves; None without an HTTP app."""
    try:
        module = importlib.import_module(f"{package}.app")
    except ModuleNotFoundError as error:
        if error.name == f"{package}.app":
            return None
        raise
    settings = load_settings(package, environ)
    with warnings.catch_warnings():
        # Building the app may warn about handler options; listing routes does not care.
        warnings.simplefilter("ignore")
        app = module.create_app(settings)
    return [Route(str(r.path), frozenset(str(m) for m in r.methods)) for r in app.routes]


def serves(routes: list[Route], path: str, method: str = "GET") -> bool:
    """Does one of ``routes`` answer ``method path``? (The query string is ignored.)"""
    path = path.split("?", 1)[0]
    return any(method in r.methods and _route_regex(r.template).fullmatch(path) for r in routes)


__all__ = [
    "IMAGE_PACKAGES",
    "Route",
    "SettingsError",
    "image_name",
    "load_settings",
    "package_for",
    "served_routes",
    "serves",
]
