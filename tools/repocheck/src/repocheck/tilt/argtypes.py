"""Argument types: what Tilt's unpackers accept for each builtin parameter.

``type_problems`` words a mismatch as Tilt does when the Tiltfile loads.
"""

from __future__ import annotations

from collections.abc import Mapping


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
    # podLabelsFromStarlarkValue: a *starlark.Dict, or a *starlark.List of them, string keys
    # and values. (Tilt refuses a tuple; the evaluation here hands tuples over as lists.)
    POD_SELECTORS = "dict of strings or list of those"
    # PodReadinessMode.Unpack: one of these strings (its error names only ignore and wait).
    POD_READINESS = "one of ignore, wait, succeeded or empty"


POD_READINESS_VALUES = ("ignore", "wait", "succeeded", "")


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
        "extra_pod_selectors": Kind.POD_SELECTORS,
        "pod_readiness": Kind.POD_READINESS,
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


def _is_str_dict(value: object) -> bool:
    return isinstance(value, dict) and all(_is_str(k) and _is_str(v) for k, v in value.items())


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
    if kind == Kind.POD_SELECTORS:
        selectors = value if isinstance(value, list) else [value]
        return value is None or all(_is_str_dict(item) for item in selectors)
    if kind == Kind.POD_READINESS:
        return value in POD_READINESS_VALUES
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
            if kind == Kind.POD_READINESS and _is_str(args[name]):
                problems.append(
                    f"{function}(): for parameter {name}: Invalid value."
                    f" Allowed: {{ignore, wait}}. Got: {args[name]}"
                )
                continue
            problems.append(
                f"{function}(): for parameter {name}: got {_type_name(args[name])}, want {kind}"
            )
    return problems
