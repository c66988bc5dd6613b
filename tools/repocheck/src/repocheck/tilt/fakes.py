"""Fake builtins: what each recorder returns, enough realism for the Tiltfile to run on.

Files are really read and ``kustomize()`` really renders; ``local()`` runs nothing.
"""

from __future__ import annotations

import itertools
import json
import posixpath
from collections.abc import Callable, Mapping
from functools import partial
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
        self.positional_flag: str | None = None
        self.trigger_mode_set = False
        self.config_parsed = False
        # Live-update steps made and not yet used by a build (Tilt's
        # unconsumedLiveUpdateSteps), by the id each step value carries.
        self.unconsumed_steps: dict[int, str] = {}
        self._step_ids = itertools.count(1)
        self.local_resources: list[str] = []
        # k8s_yaml's object index (tiltfile/k8s.State.Append): (apiVersion, kind, ns, name).
        self.object_refs: set[tuple[str, str, str, str]] = set()

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
            "local_resource": self.local_resource,
            "k8s_context": lambda a: self.kube_context,
            "k8s_namespace": lambda a: "default",
            **{
                f"config.define_{kind}": partial(self.define_flag, function=f"config.define_{kind}")
                for kind in ("bool", "string", "string_list", "object")
            },
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
            "trigger_mode": self.trigger_mode,
            "docker_build": self.docker_build,
        }

    def _step(self, kind: str) -> Callable[[dict[str, Any]], object]:
        def make(a: dict[str, Any]) -> object:
            step_id = next(self._step_ids)
            self.unconsumed_steps[step_id] = kind
            return {"__tilt_step__": kind, "__tilt_step_id__": step_id, **a}

        return make

    def consume_steps(self, steps: object) -> None:
        """tiltfileState.consumeLiveUpdateStep for each step a build used."""
        for step in steps if isinstance(steps, list | tuple) else [steps]:
            if isinstance(step, dict) and "__tilt_step_id__" in step:
                self.unconsumed_steps.pop(step["__tilt_step_id__"], None)

    def unconsumed_problem(self) -> str | None:
        """tiltfileState.checkForUnconsumedLiveUpdateSteps, after the Tiltfile ran."""
        if not self.unconsumed_steps:
            return None
        kinds = ", ".join(sorted(set(self.unconsumed_steps.values())))
        return (
            f"found {len(self.unconsumed_steps)} live_update steps that were created but not "
            f"used in a live_update ({kinds})"
        )

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
        raise TiltfileFailed(f"open {target}: no such file or directory")

    def kustomize(self, a: dict[str, Any]) -> object:
        rendered = manifests.render(self.path(a["paths"]))
        return _blob(yaml.safe_dump_all(rendered, sort_keys=False))

    def listdir(self, a: dict[str, Any]) -> list[str]:
        base = self.path(a["dir"])
        pattern = "**/*" if a.get("recursive") else "*"
        return sorted(str(p) for p in base.glob(pattern) if p.is_file())

    def k8s_yaml(self, a: dict[str, Any]) -> None:
        items = a["yaml"] if isinstance(a["yaml"], list) else [a["yaml"]]
        objects: list[dict[str, Any]] = []
        for item in items:
            if isinstance(item, dict) and "__tilt_blob__" in item:
                text = _text(item)
            else:
                text = self.path(item).read_text()
            objects.extend(d for d in yaml.safe_load_all(text) if d)
        if not objects and not isinstance(a["yaml"], str):
            # tiltfileState.k8sYaml: nothing to deploy (a path string is let through)
            self.result.problems.append("k8s_yaml(): Empty YAML passed to k8s_yaml")
            return
        for obj in objects:
            # tiltfile/k8s.State.Append: one object, one k8s_yaml, unless allow_duplicates.
            meta = obj.get("metadata") or {}
            ref = (
                str(obj.get("apiVersion", "")),
                str(obj.get("kind", "")),
                str(meta.get("namespace", "")),
                str(meta.get("name", "")),
            )
            if ref in self.object_refs and not a.get("allow_duplicates"):
                where = f" (Namespace: {ref[2]})" if ref[2] else ""
                self.result.problems.append(
                    f"k8s_yaml(): Duplicate YAML: {ref[1]} {ref[3]}{where}; ignore this error "
                    "with k8s_yaml(..., allow_duplicates=True)"
                )
                return
            self.object_refs.add(ref)
        self.result.manifests.extend(objects)

    def local_resource(self, a: dict[str, Any]) -> None:
        """tiltfileState.localResource: checkResourceConflict among local resources."""
        name = str(a["name"])
        if name in self.local_resources:
            self.result.problems.append(
                f'local_resource(): local_resource named "{name}" already exists'
            )
            return
        self.local_resources.append(name)

    def define_flag(self, a: dict[str, Any], function: str = "config.define_string") -> None:
        """config.configSettingDefinitionBuiltin: before parse, once per name, one args=True."""
        name = str(a["name"])
        problem = None
        if self.config_parsed:
            problem = f"{function} cannot be called after config.parse is called"
        elif name in self.defined_flags:
            problem = f"{name} defined multiple times"
        elif a.get("args") and self.positional_flag is not None:
            problem = f"both {name} and {self.positional_flag} are defined as positional args"
        if problem is not None:
            self.result.problems.append(f"{function}(): {problem}")
            return
        if a.get("args"):
            self.positional_flag = name
        self.defined_flags.append(name)

    def parse_flags(self, a: dict[str, Any]) -> dict[str, object]:
        self.config_parsed = True
        for name in self.flags:
            if name not in self.defined_flags:
                raise TiltfileFailed(f"config.parse: flag {name!r} is not defined")
        return dict(self.flags)

    def trigger_mode(self, a: dict[str, Any]) -> None:
        """tiltfileState.triggerModeFn: once per Tiltfile."""
        if self.trigger_mode_set:
            self.result.problems.append("trigger_mode(): trigger_mode can only be called once")
        self.trigger_mode_set = True

    def fail(self, a: dict[str, Any]) -> None:
        raise TiltfileFailed(str(a["msg"]))

    def dockerfile_problem(self, a: dict[str, Any], function: str = "docker_build") -> str | None:
        """tiltfileState.dockerBuild reads the Dockerfile when it has no dockerfile_contents."""
        if a.get("dockerfile_contents") is not None:
            return None
        context = _text(a["context"])
        path = _text(a["dockerfile"]) if a.get("dockerfile") is not None else None
        target = self.path(path if path is not None else posixpath.join(context, "Dockerfile"))
        if target.is_file():
            return None
        return f"{function}(): error reading dockerfile: open {target}: no such file or directory"

    def docker_build(self, a: dict[str, Any]) -> None:
        problem = self.dockerfile_problem(a) or self.result.define_ref(
            "docker_build", str(a["ref"])
        )
        if problem is not None:
            self.result.problems.append(problem)
            return
        self.consume_steps(a.get("live_update") or [])
        self.result.images.append(image_from(a, restart=False))
