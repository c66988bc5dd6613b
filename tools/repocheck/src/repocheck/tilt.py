"""Evaluate the Tiltfile without Tilt, then check what it declared.

The Tiltfile runs in a Starlark interpreter (``starlark-pyo3``) whose Tilt
builtins are recorders generated from ``tilt-api.json`` (Tilt's real
parameter lists, see ``../shared/tilt/README.md``). Each recorder checks the
call (unknown or misspelled keywords, keywords the docs show but Tilt rejects,
too many positional arguments, missing required arguments), records it, and
returns a plausible value: files are really read, ``kustomize()`` really
renders, ``local()`` runs nothing. ``ext://restart_process`` is provided as a
recorder with the extension's signature.

``check_tiltfile`` then cross-checks the recorded calls against the
repository: every service image is built from an existing context and
Dockerfile, live_update paths exist and are inside ``only=``, every image the
deployed manifests use is built, every ``k8s_resource`` names a real workload.
``built_images`` is what other checks use to ask "which images does Tilt
build?".
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import starlark as sl
import yaml

from repocheck import dockerfiles
from repocheck.k8s import manifests, workloads
from repocheck.k8s.workloads import containers

REPO_ROOT = Path(__file__).resolve().parents[4]
TILT_API_ENV = "TILT_API_JSON"
IMAGE_PREFIX = "speech-mesh/"

# image name (without prefix) -> service folder under services/
SERVICE_IMAGES: dict[str, str] = {
    "books": "books",
    "tts-backend": "tts_backend",
    "tts-v1": "tts_v1",
    "tts-v2": "tts_v2",
    "client": "client",
}

# restart_process's docker_build_with_restart (tilt-extensions
# restart_process/Tiltfile): its own parameters; every other keyword goes to
# docker_build(ref + base_suffix, context, **kwargs), the base image (so
# target= and dockerfile_contents= are fine there), and the child image
# docker_build(ref, ...) is built FROM it. Both refs are defined.
_RESTART_EXT_PARAMS = ("ref", "context", "entrypoint", "live_update")
_RESTART_EXT_OPTIONAL = ("base_suffix", "restart_file", "trigger", "exit_policy")
_RESTART_EXT_BASE_SUFFIX = "-tilt_docker_build_with_restart_base"


# --------------------------------------------------------------------------- argument types
# What Tilt's UnpackArgs (starlark-go, with Tilt's value.* unpackers) accepts
# for each parameter, from the Go source (internal/tiltfile/*.go): a string
# where an int is wanted (or the reverse) fails when the Tiltfile loads.
# A parameter not listed accepts any value (a starlark.Value in Go).
class Kind:
    STR = "string"  # Go string: a Starlark string only
    INT = "int"  # Go int: a Starlark int only (not a bool)
    BOOL = "bool"
    STRINGABLE = "string or blob"  # value.Stringable, value.LocalPath
    STR_OR_LIST = "string or list of strings"  # StringOrStringList, LocalPathList, LabelSet
    STR_SEQUENCE = "list of strings"  # starlark.Sequence read by SequenceToStringSlice
    SEQUENCE = "list"  # starlark.Sequence / *starlark.List
    STR_DICT = "dict of strings"  # value.StringStringMap
    PORT_FORWARDS = "int, string, port_forward() or a list of those"
    LINKS = "string, link() or a list of those"
    COMMAND = "string or list of strings"  # value.Cmd (entrypoint, cmd)


_ARG_KINDS: dict[str, dict[str, str]] = {
    "port_forward": {
        "local_port": Kind.INT,
        "container_port": Kind.INT,
        "name": Kind.STR,
        "link_path": Kind.STR,
        "host": Kind.STR,
    },
    "link": {"url": Kind.STR, "name": Kind.STR},
    "sync": {"local_path": Kind.STR, "remote_path": Kind.STR},
    "run": {"cmd": Kind.COMMAND, "echo_off": Kind.BOOL},
    "fall_back_on": {"paths": Kind.STR_OR_LIST},
    "version_settings": {"check_updates": Kind.BOOL, "constraint": Kind.STR},
    "allow_k8s_contexts": {"contexts": Kind.STR_OR_LIST},
    "k8s_resource": {
        "workload": Kind.STR,
        "new_name": Kind.STR,
        "port_forwards": Kind.PORT_FORWARDS,
        "resource_deps": Kind.STR_SEQUENCE,
        "objects": Kind.STR_SEQUENCE,
        "auto_init": Kind.BOOL,
        "links": Kind.LINKS,
        "labels": Kind.STR_OR_LIST,
    },
    "local_resource": {
        "name": Kind.STR,
        "cmd": Kind.COMMAND,
        "serve_cmd": Kind.COMMAND,
        "deps": Kind.STR_OR_LIST,
        "resource_deps": Kind.STR_SEQUENCE,
        "ignore": Kind.STR_OR_LIST,
        "auto_init": Kind.BOOL,
        "allow_parallel": Kind.BOOL,
        "links": Kind.LINKS,
        "labels": Kind.STR_OR_LIST,
        "env": Kind.STR_DICT,
        "serve_env": Kind.STR_DICT,
    },
    "docker_build": {
        "ref": Kind.STR,
        "context": Kind.STRINGABLE,
        "build_args": Kind.STR_DICT,
        "dockerfile": Kind.STRINGABLE,
        "dockerfile_contents": Kind.STRINGABLE,
        "live_update": Kind.SEQUENCE,
        "match_in_env_vars": Kind.BOOL,
        "ignore": Kind.STR_OR_LIST,
        "only": Kind.STR_OR_LIST,
        "entrypoint": Kind.COMMAND,
        "container_args": Kind.STR_SEQUENCE,
        "target": Kind.STR,
        "ssh": Kind.STR_OR_LIST,
        "secret": Kind.STR_OR_LIST,
        "network": Kind.STRINGABLE,
        "extra_tag": Kind.STR_OR_LIST,
        "cache_from": Kind.STR_OR_LIST,
        "pull": Kind.BOOL,
        "platform": Kind.STRINGABLE,
        "extra_hosts": Kind.STR_OR_LIST,
    },
    "docker_build_with_restart": {
        "base_suffix": Kind.STR,
        "restart_file": Kind.STR,
        "exit_policy": Kind.STR,
        "trigger": Kind.STR_OR_LIST,
    },
    "k8s_yaml": {"allow_duplicates": Kind.BOOL},
    "kustomize": {"paths": Kind.STRINGABLE, "flags": Kind.STR_SEQUENCE},
    "read_file": {"paths": Kind.STRINGABLE},
    "read_yaml": {"paths": Kind.STRINGABLE},
    "read_yaml_stream": {"paths": Kind.STRINGABLE},
    "read_json": {"paths": Kind.STRINGABLE},
    "encode_yaml_stream": {"objs": Kind.SEQUENCE},
    "os.getenv": {"key": Kind.STRINGABLE},
    "config.define_bool": {"name": Kind.STR, "args": Kind.BOOL, "usage": Kind.STR},
    "config.define_string": {"name": Kind.STR, "args": Kind.BOOL, "usage": Kind.STR},
    "config.define_string_list": {"name": Kind.STR, "args": Kind.BOOL, "usage": Kind.STR},
}
# The docker_build parameters the extension forwards are typed as docker_build's.
_ARG_KINDS["docker_build_with_restart"] = {
    **_ARG_KINDS["docker_build"],
    "entrypoint": Kind.COMMAND,
    **_ARG_KINDS["docker_build_with_restart"],
}


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _is_blob(value: object) -> bool:
    return isinstance(value, dict) and "__tilt_blob__" in value


def _is_list(value: object) -> bool:
    return isinstance(value, list | tuple)


def _items(value: object) -> list[object]:
    """A list's or tuple's elements; anything else as a one-element list."""
    return list(value) if isinstance(value, list | tuple) else [value]


def _marked(value: object, marker: str) -> bool:
    return isinstance(value, dict) and marker in value


def _fits(kind: str, value: object) -> bool:
    """Would Tilt's unpacker for ``kind`` accept ``value``? (None only where Tilt allows it.)"""
    if kind == Kind.STR:
        return _is_str(value)
    if kind == Kind.INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == Kind.BOOL:
        return isinstance(value, bool)
    if kind == Kind.STRINGABLE:
        return _is_str(value) or _is_blob(value)
    if kind in (Kind.STR_OR_LIST, Kind.COMMAND):
        return value is None or all(map(_is_str, _items(value)))
    if kind == Kind.STR_SEQUENCE:
        return _is_list(value) and all(map(_is_str, _items(value)))
    if kind == Kind.SEQUENCE:
        return _is_list(value)
    if kind == Kind.STR_DICT:
        return isinstance(value, dict) and all(_is_str(k) and _is_str(v) for k, v in value.items())
    if kind == Kind.PORT_FORWARDS:
        return all(
            (isinstance(i, int) and not isinstance(i, bool))
            or _is_str(i)
            or _marked(i, "__tilt_port_forward__")
            for i in _items(value)
        )
    if kind == Kind.LINKS:
        return value is None or all(
            _is_str(i) or _marked(i, "__tilt_link__") for i in _items(value)
        )
    return True


def _type_name(value: object) -> str:
    if value is None:
        return "NoneType"
    if isinstance(value, bool):
        return "bool"
    if _is_blob(value):
        return "blob"
    for marker, name in (
        ("__tilt_port_forward__", "port_forward"),
        ("__tilt_link__", "link"),
        ("__tilt_step__", "live_update step"),
    ):
        if _marked(value, marker):
            return name
    return {int: "int", str: "string", list: "list", tuple: "tuple", dict: "dict"}.get(
        type(value), type(value).__name__
    )


def type_problems(
    function: str, args: Mapping[str, object], none_means_unset: frozenset[str] = frozenset()
) -> list[str]:
    """Arguments of a type Tilt's UnpackArgs rejects, as Tilt words it."""
    problems: list[str] = []
    for name, kind in _ARG_KINDS.get(function, {}).items():
        if name not in args or (args[name] is None and name in none_means_unset):
            continue
        if not _fits(kind, args[name]):
            problems.append(
                f"{function}(): for parameter {name}: got {_type_name(args[name])}, want {kind}"
            )
    return problems


def _normal_ref(ref: str) -> str:
    """Docker's familiar form: docker.io/library/x and x are one image."""
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


# Tilt builtins the interpreter itself provides (struct takes any keywords;
# a recorder could not pass functions through to Python).
_INTERPRETER_BUILTINS = frozenset({"struct"})


class TiltfileFailed(Exception):
    """The Tiltfile called ``fail()``."""


# --------------------------------------------------------------------------- API


@dataclass(frozen=True)
class Param:
    name: str
    required: bool = False
    keyword_only: bool = False
    varargs: bool = False
    kwargs: bool = False
    doc_name: str | None = None
    none_means_unset: bool = False


@dataclass(frozen=True)
class Signature:
    """One Tilt builtin as Tilt itself unpacks its arguments."""

    name: str
    params: tuple[Param, ...]
    max_positional: int | None
    rejected_doc_names: frozenset[str] = frozenset()
    accepts_kwargs: bool = False

    def bind(self, args: Sequence[object], kwargs: Mapping[str, object]) -> BoundCall:
        problems: list[str] = []
        bound: dict[str, Any] = {}
        positional = [p for p in self.params if not p.keyword_only and not p.kwargs]
        if self.max_positional is not None and len(args) > self.max_positional:
            problems.append(
                f"{self.name}(): {len(args)} positional arguments, Tilt accepts at most "
                f"{self.max_positional}"
            )
        for index, value in enumerate(args):
            if index < len(positional) and not positional[index].varargs:
                bound[positional[index].name] = value
            elif positional and positional[-1].varargs:
                extra = bound.setdefault(positional[-1].name, [])
                assert isinstance(extra, list)
                extra.append(value)
        names = {p.name for p in self.params if not p.varargs and not p.kwargs}
        for key, value in kwargs.items():
            if key in self.rejected_doc_names:
                problems.append(
                    f"{self.name}(): keyword {key!r} is the name in Tilt's docs, but Tilt "
                    f"rejects it; use {self._accepted_name(key)!r}"
                )
            elif key not in names and not self.accepts_kwargs:
                problems.append(f"{self.name}(): unknown keyword {key!r}")
            elif key in bound:
                problems.append(f"{self.name}(): {key!r} given positionally and by keyword")
            bound[key] = value
        for param in self.params:
            if param.required and not param.varargs and param.name not in bound:
                problems.append(f"{self.name}(): missing required argument {param.name!r}")
        unset = frozenset(p.name for p in self.params if p.none_means_unset)
        problems.extend(type_problems(self.name, bound, unset))
        return BoundCall(self.name, bound, problems)

    def _accepted_name(self, doc_name: str) -> str:
        for param in self.params:
            if param.doc_name == doc_name:
                return param.name
        return "the parameter name in tilt-api.json"


@dataclass
class BoundCall:
    name: str
    args: dict[str, Any]
    problems: list[str]


@dataclass(frozen=True)
class TiltApi:
    functions: Mapping[str, Signature]
    values: Mapping[str, str]

    @classmethod
    def load(cls, path: Path | None = None) -> TiltApi:
        data = json.loads((path or default_api_path()).read_text())
        functions: dict[str, Signature] = {}
        for name, spec in data["functions"].items():
            if spec.get("statement"):
                continue  # load() is syntax, handled by the file loader
            params = tuple(
                Param(
                    p["name"],
                    bool(p.get("required")),
                    bool(p.get("keyword_only")),
                    bool(p.get("varargs")),
                    bool(p.get("kwargs")),
                    p.get("doc_name"),
                    bool(p.get("none_means_unset")),
                )
                for p in spec["params"]
            )
            functions[name] = Signature(
                name,
                params,
                spec.get("max_positional"),
                frozenset(spec.get("rejected_doc_names") or ()),
                bool(spec.get("accepts_kwargs")),
            )
        return cls(functions, dict(data.get("values", {})))


def default_api_path(repo_root: Path = REPO_ROOT) -> Path:
    """``$TILT_API_JSON``, else ``../shared/tilt/tilt-api.json`` beside the repo."""
    configured = os.environ.get(TILT_API_ENV)
    if configured:
        return Path(configured)
    return repo_root.parent / "shared" / "tilt" / "tilt-api.json"


# --------------------------------------------------------------------------- results


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
            return f"{function}(): Image for ref {ref!r} has already been defined"
        self.defined_refs.append(normal)
        return None

    def called(self, name: str) -> list[BoundCall]:
        return [c for c in self.calls if c.name == name]


# --------------------------------------------------------------------------- values


def _blob(text: str) -> dict[str, str]:
    """Tilt's Blob: content, not a path."""
    return {"__tilt_blob__": text}


def _text(value: object) -> str:
    """The YAML/JSON text behind a Blob, a string, or a path."""
    if isinstance(value, dict) and "__tilt_blob__" in value:
        return str(value["__tilt_blob__"])
    return str(value)


class _Behaviours:
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
        self.result.images.append(_image_from(a, restart=False))


def _command(value: object) -> list[str]:
    """Tilt's entrypoint: a list, or a string Tilt runs with ``sh -c``."""
    if isinstance(value, str):
        return ["sh", "-c", value]
    return [str(word) for word in value] if isinstance(value, list) else []


# ImageBuild.dockerfile of a build from dockerfile_contents= (no file to read).
INLINE_DOCKERFILE = "<dockerfile_contents>"


def _image_from(a: Mapping[str, Any], *, restart: bool) -> ImageBuild:
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


# --------------------------------------------------------------------------- evaluation


def _recorder(
    signature: Signature,
    result: TiltfileResult,
    behaviour: Callable[[dict[str, Any]], object] | None,
) -> Callable[..., object]:
    def record(*args: object, **kwargs: object) -> object:
        call = signature.bind(args, kwargs)
        result.calls.append(call)
        result.problems.extend(call.problems)
        if behaviour is None or call.problems:
            return None
        return behaviour(call.args)

    return record


def _restart_ext_recorder(api: TiltApi, result: TiltfileResult) -> Callable[..., object]:
    docker_build = api.functions["docker_build"]
    forwarded = {p.name for p in docker_build.params} - set(_RESTART_EXT_PARAMS)
    params = tuple(Param(n, required=True) for n in _RESTART_EXT_PARAMS) + tuple(
        Param(n) for n in _RESTART_EXT_OPTIONAL
    )
    own = Signature("docker_build_with_restart", params, None, accepts_kwargs=True)

    def record(*args: object, **kwargs: object) -> object:
        call = own.bind(args, kwargs)
        for key in call.args:
            if key not in forwarded and key not in {p.name for p in params}:
                call.problems.append(
                    f"docker_build_with_restart(): unknown keyword {key!r} "
                    "(neither the extension's nor docker_build's)"
                )
        if call.args.get("dockerfile") is not None and "dockerfile_contents" in call.args:
            call.problems.append(
                "docker_build_with_restart(): Cannot specify both dockerfile and "
                "dockerfile_contents (docker_build of the base image)"
            )
        steps = call.args.get("live_update") or []
        if not steps:
            call.problems.append("docker_build_with_restart(): needs live_update steps")
        if any(
            isinstance(s, dict) and s.get("__tilt_step__") == "restart_container" for s in steps
        ):
            call.problems.append(
                "docker_build_with_restart(): restart_container() is not allowed here"
            )
        if not call.problems:
            # The extension defines the base image, then the image itself.
            ref = str(call.args["ref"])
            suffix = call.args.get("base_suffix", _RESTART_EXT_BASE_SUFFIX)
            for defined in (f"{ref}{suffix}", ref):
                problem = result.define_ref("docker_build_with_restart", defined)
                if problem is not None:
                    call.problems.append(problem)
                    break
        result.calls.append(call)
        result.problems.extend(call.problems)
        if not call.problems:
            result.images.append(_image_from(call.args, restart=True))
        return None

    return record


def _safe_name(dotted: str) -> str:
    return "_t_" + dotted.replace(".", "__")


def _namespace_prelude(
    dotted_functions: Iterable[str], values: Mapping[str, str], constants: Mapping[str, str]
) -> str:
    """Starlark that builds ``config``, ``os``, ``os.path``... as structs."""
    tree: dict[str, Any] = {}
    for name in dotted_functions:
        parts = name.split(".")
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _safe_name(name)
    for name, expression in constants.items():
        parts = name.split(".")
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = expression

    def emit(node: Mapping[str, Any]) -> str:
        fields = ", ".join(
            f"{key}={emit(value) if isinstance(value, dict) else value}"
            for key, value in sorted(node.items())
        )
        return f"struct({fields})"

    # The trailing None: eval returns the last statement's value, which must
    # be convertible to Python (structs of callables are not).
    return "".join(f"{top} = {emit(node)}\n" for top, node in sorted(tree.items())) + "None\n"


def evaluate_tiltfile(
    repo_root: Path = REPO_ROOT,
    *,
    source: str | None = None,
    api: TiltApi | None = None,
    flags: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
    kube_context: str | None = None,
) -> TiltfileResult:
    """Run the Tiltfile (or ``source`` in its place) with recording builtins.

    ``kube_context`` defaults to the kind context the Tiltfile expects,
    ``kind-<name in k8s/kind/cluster.yaml>``; ``flags`` are what
    ``config.parse()`` returns (``tilt up -- --flag``).
    """
    api = api or TiltApi.load()
    tiltfile = repo_root / "Tiltfile"
    text = source if source is not None else tiltfile.read_text()
    result = TiltfileResult()
    behaviours = _Behaviours(
        repo_root,
        result,
        flags or {},
        env if env is not None else {},
        kube_context if kube_context is not None else default_kube_context(repo_root),
    ).table()

    module = sl.Module()
    dotted = []
    for name, signature in api.functions.items():
        if name in _INTERPRETER_BUILTINS:
            continue
        recorder = _recorder(signature, result, behaviours.get(name))
        if "." in name:
            dotted.append(name)
            module.add_callable(_safe_name(name), recorder)
        else:
            module.add_callable(name, recorder)

    module["__file__"] = str(tiltfile)
    module["__name__"] = "__main__"
    module["TRIGGER_MODE_AUTO"] = "TRIGGER_MODE_AUTO"
    module["TRIGGER_MODE_MANUAL"] = "TRIGGER_MODE_MANUAL"
    module["_t_os_environ"] = dict(env or {})
    constants = {
        "os.name": '"posix"',
        "os.environ": "_t_os_environ",
        "sys.argv": '["tilt", "up"]',
        "sys.executable": '"/usr/local/bin/tilt"',
        "config.tilt_subcommand": '"up"',
        "config.main_path": json.dumps(str(tiltfile)),
        "config.main_dir": json.dumps(str(repo_root)),
    }
    missing = (
        set(api.values)
        - set(constants)
        - {
            "__file__",
            "__name__",
            "TRIGGER_MODE_AUTO",
            "TRIGGER_MODE_MANUAL",
        }
    )
    if missing:
        result.problems.append(f"harness: no placeholder for Tilt values {sorted(missing)}")

    globals_ = sl.Globals.extended_by([sl.LibraryExtension.StructType])
    dialect = sl.Dialect.extended()
    prelude = _namespace_prelude(dotted, api.values, constants)
    sl.eval(module, sl.parse("<tilt builtins>", prelude, dialect), globals_)

    restart_ext = _restart_ext_recorder(api, result)

    def load_module(name: str) -> sl.FrozenModule:
        if name != "ext://restart_process":
            raise TiltfileFailed(f"load({name!r}): not an extension this harness provides")
        ext = sl.Module()
        ext.add_callable("docker_build_with_restart", restart_ext)
        return ext.freeze()

    try:
        ast = sl.parse("Tiltfile", text + "\nNone\n", dialect)
        sl.eval(module, ast, globals_, sl.FileLoader(load_module))
    except sl.StarlarkError as error:
        message = str(error)
        marker = "TiltfileFailed: "
        if marker in message:
            result.failure = message.split(marker, 1)[1].splitlines()[0]
        else:
            result.failure = message
    return result


def default_kube_context(repo_root: Path = REPO_ROOT) -> str:
    config = yaml.safe_load((repo_root / "k8s" / "kind" / "cluster.yaml").read_text())
    return f"kind-{config['name']}"


# --------------------------------------------------------------------------- checks


def built_images(repo_root: Path = REPO_ROOT, result: TiltfileResult | None = None) -> set[str]:
    """The image refs the Tiltfile builds (what manifests may use)."""
    result = result or evaluate_tiltfile(repo_root)
    return {image.ref for image in result.images}


def manifest_images(objects: Iterable[Mapping[str, Any]]) -> set[str]:
    """Container images of every workload among ``objects``."""
    images: set[str] = set()
    for obj in objects:
        for container in containers(obj):
            if container.get("image"):
                images.add(str(container["image"]))
    return images


def _covered(path: str, patterns: Sequence[str]) -> bool:
    """Is ``path`` inside one of the ``only=`` entries (files or folders)?"""
    clean = posixpath.normpath(path)
    for entry in patterns:
        base = posixpath.normpath(entry)
        if clean == base or clean.startswith(base + "/") or base == ".":
            return True
    return False


def _image_problems(repo_root: Path, image: ImageBuild) -> list[str]:
    problems: list[str] = []
    where = f"docker_build({image.ref!r})"
    context = repo_root / image.context
    dockerfile = repo_root / image.dockerfile
    if not context.is_dir():
        problems.append(f"{where}: context {image.context!r} does not exist")
    if image.dockerfile == INLINE_DOCKERFILE:
        return problems  # no Dockerfile on disk to compare with
    if not dockerfile.is_file():
        problems.append(f"{where}: Dockerfile {image.dockerfile!r} does not exist")
        return problems
    if image.only:
        for entry in image.only:
            if not (context / entry).exists():
                problems.append(f"{where}: only= entry {entry!r} does not exist")
        for source in dockerfiles.copy_sources(dockerfile, dict(image.build_args)):
            if not _covered(source, image.only):
                problems.append(
                    f"{where}: the Dockerfile copies {source!r}, which only= leaves out"
                )
    seen_sync = False
    for step in image.live_update:
        if not isinstance(step, Mapping):
            continue  # a step whose call was already reported as wrong
        kind = step.get("__tilt_step__")
        if kind == "sync":
            seen_sync = True
            local = str(step["local_path"])
            if not (repo_root / local).exists():
                problems.append(f"{where}: live_update sync path {local!r} does not exist")
            elif image.only and not _covered(posixpath.relpath(local, image.context), image.only):
                problems.append(f"{where}: live_update syncs {local!r}, which only= leaves out")
        elif kind == "fall_back_on":
            if seen_sync:
                problems.append(f"{where}: fall_back_on must come before the sync steps")
            paths = step["paths"]
            for path in [paths] if isinstance(paths, str) else paths:
                if not (repo_root / str(path)).exists():
                    problems.append(f"{where}: fall_back_on path {path!r} does not exist")
        elif kind == "restart_container":
            problems.append(f"{where}: restart_container() is not allowed (Kubernetes)")
    if image.live_update and not image.restart:
        problems.append(f"{where}: live_update without the restart_process extension")
    if image.restart:
        # restart_process replaces the container command: it must start what
        # the image itself starts.
        expected = dockerfiles.final_entrypoint(dockerfile)
        if expected is not None and image.entrypoint != expected:
            problems.append(
                f"{where}: restarts {image.entrypoint!r}, "
                f"but the image's ENTRYPOINT is {expected!r}"
            )
    return problems


def check_tiltfile(repo_root: Path = REPO_ROOT, result: TiltfileResult | None = None) -> list[str]:
    """Everything wrong with the Tiltfile, as messages (empty when fine)."""
    result = result or evaluate_tiltfile(repo_root)
    problems = [f"Tiltfile: {p}" for p in dict.fromkeys(result.problems)]
    if result.failure:
        return [*problems, f"Tiltfile failed: {result.failure}"]

    by_ref = {image.ref: image for image in result.images}
    for name, folder in SERVICE_IMAGES.items():
        ref = IMAGE_PREFIX + name
        image = by_ref.get(ref)
        if image is None:
            problems.append(f"Tiltfile: no docker_build for {ref}")
            continue
        expected = dockerfiles.SERVICE_DOCKERFILE
        if posixpath.normpath(image.dockerfile) != expected:
            problems.append(f"Tiltfile: {ref} builds from {image.dockerfile!r}, not {expected!r}")
        service = dict(image.build_args).get("SERVICE")
        if service != folder:
            problems.append(f"Tiltfile: {ref} builds with SERVICE={service!r}, not {folder!r}")
    for image in result.images:
        problems.extend(_image_problems(repo_root, image))

    for missing in sorted(manifest_images(result.manifests) - set(by_ref)):
        problems.append(f"Tiltfile: manifests use image {missing!r}; no docker_build builds it")

    problems.extend(_resource_problems(result))
    return problems


def _workload_names(objects: Iterable[dict[str, Any]]) -> set[str]:
    return {str(o["metadata"]["name"]) for o in workloads.workloads(objects)}


def _object_selectors(objects: Iterable[Mapping[str, Any]]) -> set[str]:
    selectors: set[str] = set()
    for o in objects:
        meta = o.get("metadata", {})
        name, kind = str(meta.get("name", "")), str(o.get("kind", "")).lower()
        selectors.update({name, f"{name}:{kind}", f"{name}:{kind}:{meta.get('namespace', '')}"})
    return selectors


def _resource_problems(result: TiltfileResult) -> list[str]:
    problems: list[str] = []
    workloads = _workload_names(result.manifests)
    selectors = _object_selectors(result.manifests)
    resources = {str(c.args["name"]) for c in result.called("local_resource")}
    configured: set[str] = set()
    for call in result.called("k8s_resource"):
        workload = call.args.get("workload")
        if workload is not None:
            if str(workload) not in workloads:
                problems.append(f"Tiltfile: k8s_resource({workload!r}) names no workload")
            configured.add(str(workload))
        name = call.args.get("new_name") or workload
        if name is None:
            problems.append("Tiltfile: k8s_resource() with neither workload nor new_name")
            continue
        resources.add(str(name))
        for selector in call.args.get("objects") or []:
            if str(selector).lower() not in {s.lower() for s in selectors}:
                problems.append(f"Tiltfile: k8s_resource({name!r}) object {selector!r} not found")
    resources |= workloads
    for call in [*result.called("k8s_resource"), *result.called("local_resource")]:
        name = call.args.get("new_name") or call.args.get("workload") or call.args.get("name")
        for dep in call.args.get("resource_deps") or []:
            if str(dep) not in resources:
                problems.append(f"Tiltfile: {name!r} depends on unknown resource {dep!r}")
    for workload in sorted(workloads - configured):
        problems.append(f"Tiltfile: workload {workload!r} has no k8s_resource (labels, deps)")
    return problems
