"""Fake builtins: what each recorder returns, enough realism for the Tiltfile to run on.

Files are really read and ``kustomize()`` really renders; ``local()`` runs nothing.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from repocheck.k8s import manifests
from repocheck.tilt.results import TiltfileResult, image_from


class TiltfileFailed(Exception):
    """The Tiltfile called ``fail()``."""


def _blob(text: str) -> dict[str, str]:
    """Tilt's Blob: content, not a path."""
    return {"__tilt_blob__": text}


def _text(value: object) -> str:
    """The YAML/JSON text behind a Blob, a string, or a path."""
    if isinstance(value, dict) and "__tilt_blob__" in value:
        return str(value["__tilt_blob__"])
    return str(value)


class Behaviours:
    """What each recorder returns: enough realism for the Tiltfile to run on."""

    def __init__(
        self,
        root: Path,
        result: TiltfileResult,
        flags: Mapping[str, object],
        env: Mapping[str, str],
        kube_context: str,
    ) -> None:
        self.root = root
        self.result = result
        self.flags = dict(flags)
        self.env = dict(env)
        self.kube_context = kube_context
        self.defined_flags: list[str] = []

    def path(self, value: object) -> Path:
        return self.root / str(value)

    def table(self) -> dict[str, Callable[[dict[str, Any]], object]]:
        step = self._step
        return {
            "read_file": self.read_file,
            "read_yaml": lambda a: self._read(a, yaml.safe_load),
            "read_yaml_stream": lambda a: self._read(a, lambda t: list(yaml.safe_load_all(t))),
            "read_json": lambda a: self._read(a, json.loads),
            "decode_yaml": lambda a: yaml.safe_load(_text(a["yaml"])),
            "decode_yaml_stream": lambda a: [
                d for d in yaml.safe_load_all(_text(a["yaml"])) if d is not None
            ],
            "decode_json": lambda a: json.loads(_text(a["json"])),
            "encode_yaml": lambda a: _blob(yaml.safe_dump(a["obj"], sort_keys=False)),
            "encode_yaml_stream": lambda a: _blob(
                yaml.safe_dump_all(list(a["objs"]), sort_keys=False)
            ),
            "encode_json": lambda a: _blob(json.dumps(a["obj"])),
            "blob": lambda a: _blob(str(a["input"])),
            "kustomize": self.kustomize,
            "local": lambda a: _blob(""),
            "listdir": self.listdir,
            "k8s_yaml": self.k8s_yaml,
            "k8s_context": lambda a: self.kube_context,
            "k8s_namespace": lambda a: "default",
            "config.define_bool": self.define_flag,
            "config.define_string": self.define_flag,
            "config.define_string_list": self.define_flag,
            "config.define_object": self.define_flag,
            "config.parse": self.parse_flags,
            "os.getenv": lambda a: self.env.get(str(a["key"]), a.get("default")),
            "os.getcwd": lambda a: str(self.root),
            "os.path.exists": lambda a: self.path(a["path"]).exists(),
            "os.path.join": lambda a: posixpath.join(*[str(p) for p in a.get("paths", [])]),
            "os.path.abspath": lambda a: str((self.root / str(a["path"])).resolve()),
            "os.path.realpath": lambda a: str((self.root / str(a["path"])).resolve()),
            "os.path.basename": lambda a: posixpath.basename(str(a["path"])),
            "os.path.dirname": lambda a: posixpath.dirname(str(a["path"])),
            "os.path.relpath": lambda a: posixpath.relpath(
                str(a["targpath"]), str(a.get("basepath") or ".")
            ),
            "shlex.quote": lambda a: "'" + str(a["name"]).replace("'", "'\"'\"'") + "'",
            "sync": step("sync"),
            "run": step("run"),
            "fall_back_on": step("fall_back_on"),
            "initial_sync": step("initial_sync"),
            "restart_container": step("restart_container"),
            "port_forward": lambda a: {"__tilt_port_forward__": True, **a},
            "link": lambda a: {"__tilt_link__": True, **a},
            "fail": self.fail,
            "docker_build": self.docker_build,
        }

    @staticmethod
    def _step(kind: str) -> Callable[[dict[str, Any]], object]:
        return lambda a: {"__tilt_step__": kind, **a}

    def read_file(self, a: dict[str, Any]) -> object:
        target = self.path(a["paths"])
        if target.is_file():
            return _blob(target.read_text())
        if "default" in a:
            return a["default"]
        self.result.problems.append(f"read_file({a['paths']!r}): no such file")
        return _blob("")

    def _read(self, a: dict[str, Any], parse: Callable[[str], object]) -> object:
        target = self.path(a["paths"])
        if target.is_file():
            return parse(target.read_text())
        if "default" in a:
            return a["default"]
        raise TiltfileFailed(f"cannot read {a['paths']!r}: no such file")

    def kustomize(self, a: dict[str, Any]) -> object:
        rendered = manifests.render(self.path(a["paths"]))
        return _blob(yaml.safe_dump_all(rendered, sort_keys=False))

    def listdir(self, a: dict[str, Any]) -> list[str]:
        base = self.path(a["dir"])
        pattern = "**/*" if a.get("recursive") else "*"
        return sorted(str(p) for p in base.glob(pattern) if p.is_file())

    def k8s_yaml(self, a: dict[str, Any]) -> None:
        items = a["yaml"] if isinstance(a["yaml"], list) else [a["yaml"]]
        for item in items:
            if isinstance(item, dict) and "__tilt_blob__" in item:
                text = _text(item)
            else:
                text = self.path(item).read_text()
            self.result.manifests.extend(d for d in yaml.safe_load_all(text) if d)

    def define_flag(self, a: dict[str, Any]) -> None:
        self.defined_flags.append(str(a["name"]))

    def parse_flags(self, a: dict[str, Any]) -> dict[str, object]:
        for name in self.flags:
            if name not in self.defined_flags:
                raise TiltfileFailed(f"config.parse: flag {name!r} is not defined")
        return dict(self.flags)

    def fail(self, a: dict[str, Any]) -> None:
        raise TiltfileFailed(str(a["msg"]))

    def docker_build(self, a: dict[str, Any]) -> None:
        problem = self.result.define_ref("docker_build", str(a["ref"]))
        if problem is not None:
            self.result.problems.append(problem)
            return
        if a.get("dockerfile") is not None and "dockerfile_contents" in a:
            self.result.problems.append(
                "docker_build(): Cannot specify both dockerfile and dockerfile_contents"
            )
            return
        self.result.images.append(image_from(a, restart=False))
