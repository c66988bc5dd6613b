"""Argument types: what Tilt's unpackers accept for each builtin parameter.

``type_problems`` words a mismatch as Tilt does when the Tiltfile loads.
"""

from __future__ import annotations

from collections.abc import Mapping

from repocheck.tilt import rules


# What Tilt's UnpackArgs (starlark-go, with Tilt's value.* unpackers) accepts
# for each parameter, from the Go source (internal/tiltfile/*.go, Tilt v0.34.0):
# a string where an int is wanted (or the reverse) fails when the Tiltfile
# loads. Each kind is worded with the error its Go unpacker returns. A
# parameter not listed is a starlark.Value in Go: any value unpacks, and what
# the builtin's body then refuses is in rules.py.
class Kind:
    STR = "string"  # Go string: a Starlark string only
    INT = "int"  # Go int: a Starlark int only (not a bool)
    BOOL = "bool"
    STRINGABLE = "string or blob"  # value.Stringable
    PATH = "path"  # value.LocalPath: a string (not a blob)
    STR_OR_LIST = "string or list of strings"  # value.StringOrStringList
    PATH_LIST = "path or list of paths"  # value.LocalPathList
    STR_LIST = "list of strings"  # value.StringList
    SEQUENCE = "starlark.Sequence"  # starlark.Sequence (items judged by the body)
    LIST = "list"  # *starlark.List
    STR_DICT = "dict of strings"  # value.StringStringMap


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
    "run": {"echo_off": Kind.BOOL},
    "fall_back_on": {"paths": Kind.PATH_LIST},
    "version_settings": {"check_updates": Kind.BOOL, "constraint": Kind.STR},
    "k8s_resource": {
        "resource_deps": Kind.SEQUENCE,
        "objects": Kind.SEQUENCE,
    },
    "local_resource": {
        "deps": Kind.PATH_LIST,
        "resource_deps": Kind.SEQUENCE,
        "auto_init": Kind.BOOL,
        "allow_parallel": Kind.BOOL,
        "env": Kind.STR_DICT,
        "serve_env": Kind.STR_DICT,
    },
    "docker_build": {
        "ref": Kind.STR,
        "context": Kind.PATH,
        "build_args": Kind.STR_DICT,
        "dockerfile": Kind.PATH,
        "match_in_env_vars": Kind.BOOL,
        "container_args": Kind.SEQUENCE,
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
    "update_settings": {"suppress_unused_image_warnings": Kind.STR_OR_LIST},
    "k8s_yaml": {"allow_duplicates": Kind.BOOL},
    "kustomize": {"paths": Kind.PATH, "kustomize_bin": Kind.PATH, "flags": Kind.STR_LIST},
    "read_file": {"paths": Kind.PATH},
    "read_yaml": {"paths": Kind.STR},  # encoding/yaml.go: a starlark.String
    "read_yaml_stream": {"paths": Kind.STR, "default": Kind.LIST},
    "encode_yaml_stream": {"objs": Kind.LIST},
    "read_json": {"paths": Kind.PATH},
    "decode_yaml": {"yaml": Kind.STRINGABLE},
    "decode_yaml_stream": {"yaml": Kind.STRINGABLE},
    "decode_json": {"json": Kind.STRINGABLE},
    "os.getenv": {"key": Kind.STRINGABLE},
    "config.define_bool": {"name": Kind.STR, "args": Kind.BOOL, "usage": Kind.STR},
    "config.define_string": {"name": Kind.STR, "args": Kind.BOOL, "usage": Kind.STR},
    "config.define_string_list": {"name": Kind.STR, "args": Kind.BOOL, "usage": Kind.STR},
}
# The extension's own parameters (restart_process/Tiltfile): strings it formats.
_ARG_KINDS["docker_build_with_restart"] = {"base_suffix": Kind.STR, "restart_file": Kind.STR}


def _element(value: object) -> str:
    """How Go's %q prints a Starlark value's String()."""
    return rules.go_quote(value if isinstance(value, str) else _starlark_repr(value))


def _starlark_repr(value: object) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return "None"
    return repr(value) if not isinstance(value, str) else rules.go_quote(value)


def unpack_problem(kind: str, value: object) -> str | None:
    """The error Tilt's Go unpacker for ``kind`` returns for ``value``, or None."""
    t = rules.starlark_type(value)
    if kind == Kind.STR:
        return None if isinstance(value, str) else f"got {t}, want string"
    if kind == Kind.INT:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"got {t}, want int"
    if kind == Kind.BOOL:
        return None if isinstance(value, bool) else f"got {t}, want bool"
    if kind == Kind.STRINGABLE:
        ok = rules.as_string(value) is not None
        return None if ok else f"Value should be convertible to string, but is type {t}"
    if kind == Kind.PATH:
        ok = isinstance(value, str)
        return None if ok else f"expected path | string. Actual type: {rules.go_type(value)}"
    if kind in (Kind.STR_OR_LIST, Kind.PATH_LIST, Kind.STR_LIST):
        return _list_problem(kind, value)
    if kind == Kind.LIST:
        return None if isinstance(value, list | tuple) else f"got {t}, want list"
    if kind == Kind.SEQUENCE:
        return None if isinstance(value, list | tuple) else f"got {t}, want starlark.Sequence"
    if kind == Kind.STR_DICT:
        return _dict_problem(value)
    return None


def _list_problem(kind: str, value: object) -> str | None:
    """value.StringOrStringList, value.LocalPathList, value.StringList."""
    if value is None:
        return None
    if kind == Kind.STR_OR_LIST and rules.as_string(value) is not None:
        return None
    if kind == Kind.PATH_LIST and isinstance(value, str):
        return None
    if not isinstance(value, list | tuple):
        what = "a List or Tuple" if kind == Kind.STR_LIST else "a string or List or Tuple"
        return f"value should be {what} of strings, but is of type {rules.starlark_type(value)}"
    for index, item in enumerate(value):
        if kind == Kind.PATH_LIST and not isinstance(item, str):
            return (
                f"unpacking list item at index {index}: expected path | string. "
                f"Actual type: {rules.go_type(item)}"
            )
        if kind != Kind.PATH_LIST and rules.as_string(item) is None:
            start = (
                "list should contain only strings"
                if kind == Kind.STR_OR_LIST
                else ("value should contain only strings")
            )
            return f"{start}, but element {_element(item)} was of type {rules.starlark_type(item)}"
    return None


def _dict_problem(value: object) -> str | None:
    """value.StringStringMap.Unpack."""
    if value is None:
        return None
    if not isinstance(value, dict) or rules.tilt_value(value) is not None:
        return f"expected dict, got {rules.go_type(value)}"
    for key, item in value.items():
        if rules.as_string(key) is None:
            return f"key is not a string: {rules.go_type(key)} ({_starlark_repr(key)})"
        if rules.as_string(item) is None:
            return f"value is not a string: {rules.go_type(item)} ({_starlark_repr(item)})"
    return None


def parameter(name: str, positional: frozenset[str]) -> str:
    """How starlark.UnpackArgs names a parameter: bare if positional, quoted if a keyword."""
    return name if name in positional else f'"{name}"'


def mistyped(
    function: str,
    args: Mapping[str, object],
    none_means_unset: frozenset[str] = frozenset(),
    positional: frozenset[str] = frozenset(),
) -> dict[str, str]:
    """Arguments Tilt's UnpackArgs rejects: parameter -> problem, as Tilt words it."""
    problems: dict[str, str] = {}
    for name, kind in _ARG_KINDS.get(function, {}).items():
        if name not in args or (args[name] is None and name in none_means_unset):
            continue
        if (problem := unpack_problem(kind, args[name])) is not None:
            shown = parameter(name, positional)
            problems[name] = f"{function}(): for parameter {shown}: {problem}"
    return problems


def type_problems(
    function: str, args: Mapping[str, object], none_means_unset: frozenset[str] = frozenset()
) -> list[str]:
    """Arguments of a type Tilt's UnpackArgs rejects, as Tilt words it."""
    return list(mistyped(function, args, none_means_unset).values())
