"""Value rules: what Tilt refuses in an argument's value when the Tiltfile loads.

``argtypes`` judges the type of an argument; these rules judge its value the way
Tilt's own unpackers and builtins do once the type is right: enumerations,
ports, label syntax, names, URLs, image references, command shapes, live_update
step order. Each rule names the Go function it mirrors; all were read from
Tilt's source at tag v0.34.0 (``TILT_SOURCE_VERSION``), mostly under
``internal/tiltfile/``.

``param_problems`` checks one parameter (Tilt wraps these as
``<fn>: for parameter <name>: <error>``); ``call_problems`` checks what a
builtin's body checks after unpacking, worded as Tilt words it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeGuard

from repocheck.tilt import goparse

TILT_SOURCE_VERSION = "0.34.0"

Rule = Callable[[Any], str | None]

# Markers the fake builtins put on the values they return (see fakes.py).
BLOB = "__tilt_blob__"
PORT_FORWARD = "__tilt_port_forward__"
LINK = "__tilt_link__"
STEP = "__tilt_step__"
TRIGGER_MODE = "__tilt_trigger_mode__"


def go_quote(text: str) -> str:
    """Go's %q of a string (the escapes a Tiltfile string can hold)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\t", "\\t") + '"'


def marked(value: object, marker: str) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict) and marker in value


# Each marker: (the Go type Tilt prints with %T, the Starlark type name).
_MARKED_TYPES = {
    BLOB: ("io.Blob", "blob"),
    PORT_FORWARD: ("tiltfile.portForward", "port_forward"),
    LINK: ("links.Link", "link"),
    TRIGGER_MODE: ("tiltfile.triggerMode", "TriggerMode"),
}


def tilt_value(value: object) -> str | None:
    """The marker of a value a Tilt builtin made (blob, port_forward, step...), if any."""
    if isinstance(value, dict):
        return next((m for m in (*_MARKED_TYPES, STEP) if m in value), None)
    return None


def _marked_types(value: object) -> tuple[str, str] | None:
    """(Go type, Starlark type) of a value a Tilt builtin made; None for a plain value."""
    marker = tilt_value(value)
    if marker == STEP and isinstance(value, dict):
        step = str(value[STEP])
        go_name = step.title().replace("_", "")
        return (f"tiltfile.liveUpdate{go_name}Step", f"live_update_{step}_step")
    return None if marker is None else _MARKED_TYPES[marker]


def go_type(value: object) -> str:
    """The Go type name Tilt prints with %T for a Starlark value."""
    marked_types = _marked_types(value)
    if marked_types is not None:
        return marked_types[0]
    for kind, name in ((bool, "Bool"), (int, "Int"), (float, "Float"), (str, "String")):
        if isinstance(value, kind):
            return f"starlark.{name}"
    if value is None:
        return "starlark.NoneType"
    if isinstance(value, list | tuple):
        return "*starlark.List"
    return "*starlark.Dict" if isinstance(value, dict) else type(value).__name__


def starlark_type(value: object) -> str:
    """The Starlark type name (``Value.Type()``)."""
    marked_types = _marked_types(value)
    if marked_types is not None:
        return marked_types[1]
    if value is None:
        return "NoneType"
    if isinstance(value, bool):
        return "bool"
    return {int: "int", float: "float", str: "string", list: "list", tuple: "tuple"}.get(
        type(value), "dict" if isinstance(value, dict) else type(value).__name__
    )


def as_string(value: object) -> str | None:
    """value.AsString: a string, or a blob's text (io.Blob is an ImplicitStringer)."""
    if isinstance(value, str):
        return value
    if marked(value, BLOB):
        return str(value[BLOB])
    return None


def _or_sequence(value: object) -> list[object]:
    """value.ValueOrSequenceToSlice: a list's items, [] for None, else [value]."""
    if isinstance(value, list | tuple):
        return list(value)
    if value is None:
        return []
    if isinstance(value, dict) and tilt_value(value) is None:
        return list(value)  # a dict is a starlark.Sequence of its keys
    return [value]


# --------------------------------------------------------------------- unpackers


def name(value: object) -> str | None:
    """value.Name.Unpack: a string that is a valid Kubernetes path segment."""
    text = as_string(value)
    if text is None:
        return f"Value should be convertible to string, but is type {starlark_type(value)}"
    problem = goparse.path_segment_name(text)
    return None if problem is None else f'invalid value "{text}": {problem}'


def _label(value: object) -> str | None:
    """value.LabelValue.Unpack."""
    text = as_string(value)
    if text is None:
        return f"Value should be convertible to string, but is type {starlark_type(value)}"
    errors = goparse.is_qualified_name(text) or goparse.is_valid_label_value(text)
    if errors:
        return f'Invalid label "{text}": {", ".join(errors)}'
    if "/" in text:
        return f'Invalid label "{text}": cannot contain /'
    return None


def label_set(value: object) -> str | None:
    """value.LabelSet.Unpack: a label, or a list of labels."""
    if isinstance(value, str) or value is None:
        return None if value is None else _label(value)
    if not isinstance(value, list | tuple):
        return (
            "value should be a label or List or Tuple of labels, but is of type "
            f"{starlark_type(value)}"
        )
    return next((p for p in map(_label, value) if p), None)


def pod_readiness(value: object) -> str | None:
    """tiltfile/k8s.PodReadinessMode.Unpack: ignore, wait, succeeded or ''."""
    text = as_string(value)
    if text is None:
        return f"Must be a string. Got: {starlark_type(value)}"
    if text in ("ignore", "wait", "succeeded", ""):
        return None
    return f"Invalid value. Allowed: {{ignore, wait}}. Got: {text}"


def discovery_strategy(value: object) -> str | None:
    """tiltfile/k8s.DiscoveryStrategy.Unpack: '', 'default' or 'selectors-only'."""
    text = as_string(value)
    if text is None:
        return f"Must be a string. Got: {starlark_type(value)}"
    if text in ("", "default", "selectors-only"):
        return None
    return 'Invalid. Must be one of: "default", "selectors-only"'


def trigger_mode(value: object) -> str | None:
    """starlark.UnpackArgs into a tiltfile.triggerMode: only TRIGGER_MODE_AUTO/MANUAL."""
    if marked(value, TRIGGER_MODE):
        return None
    return f"got {starlark_type(value)}, want TriggerMode"


def optional_bool(value: object) -> str | None:
    """value.Optional[starlark.Bool].Unpack: a bool or None."""
    if value is None or isinstance(value, bool):
        return None
    return f"expected starlark.Bool or None, got {go_type(value)}"


def link_url(value: object) -> str | None:
    """links.parseAndMaybeAddScheme: a non-empty URL that net/url.Parse accepts."""
    text = str(value)
    if text == "":
        return f'validating URL "{text}": url empty'
    problem = goparse.url_parse(text)
    return None if problem is None else f'validating URL "{text}": {problem}'


def links(value: object) -> str | None:
    """links.LinkList.Unpack: strings (URLs) and link() values, or a list of them."""
    for item in _or_sequence(value):
        if isinstance(item, str):
            if problem := link_url(item):
                return problem
        elif not marked(item, LINK):
            return (
                "`Want a string, a link, or a sequence of these; found "
                f"{item!r} (type: {go_type(item)})"
            )
    return None


def _port(text_or_int: object) -> str | None:
    if isinstance(text_or_int, int) and not isinstance(text_or_int, bool):
        if not 0 <= text_or_int <= 65535:
            return f"portForward port value {text_or_int} is not in the valid range [0-65535]"
        return None
    return None


def _string_port_forward(text: str) -> str | None:
    """tiltfile.stringToPortForward: 'local', 'local:container' or 'host:local:container'."""
    parts = text.split(":", 2)
    local = parts[0]
    if len(parts) == 3:
        local = parts[1]
        if not goparse.valid_host(parts[0]):
            return f'portForward host value "{local}" is not a valid hostname or IP address'
    number = goparse.atoi(local)
    if number is None or not 0 <= number <= 65535:
        return f'portForward port value "{local}" is not in the valid range [0-65535]'
    if len(parts) > 1:
        number = goparse.atoi(parts[-1])
        if number is None or not 0 <= number <= 65535:
            return f'portForward port value "{parts[-1]}" is not in the valid range [0-65535]'
    return None


def port_forwards(value: object) -> str | None:
    """tiltfile.convertPortForwards: an int, a 'port spec' string, a port_forward(), or a list."""
    if value is None or marked(value, PORT_FORWARD):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return _port(value)
    if isinstance(value, str):
        return _string_port_forward(value)
    if not isinstance(value, list | tuple) and not (
        isinstance(value, dict) and tilt_value(value) is None
    ):
        return (
            "port_forwards must be an int, a port_forward, or a sequence of those; "
            f"is a {go_type(value)}"
        )
    for item in _or_sequence(value):
        if isinstance(item, int) and not isinstance(item, bool):
            problem = _port(item)
        elif isinstance(item, str):
            problem = _string_port_forward(item)
        elif marked(item, PORT_FORWARD):
            problem = None
        else:
            problem = (
                f"port_forwards arg {value!r} includes element {item!r} which must be an int "
                f"or a port_forward; is a {go_type(item)}"
            )
        if problem:
            return problem
    return None


def _label_dict(value: dict[Any, Any]) -> str | None:
    """tiltfile.labelSetFromStarlarkDict: string keys, string values."""
    for key, item in value.items():
        if not isinstance(key, str):
            return f"pod label keys must be strings; got '{key}' of type {go_type(key)}"
        if not isinstance(item, str):
            return f"pod label values must be strings; got '{item}' of type {go_type(item)}"
    return None


def extra_pod_selectors(value: object) -> str | None:
    """tiltfile.podLabelsFromStarlarkValue: a dict of string labels, or a list of such dicts."""
    if value is None:
        return None  # not given (Tilt sees nil); None itself is refused below
    if isinstance(value, dict) and tilt_value(value) is None:
        return _label_dict(value)
    if isinstance(value, list):
        for item in value:
            if not isinstance(item, dict) or tilt_value(item) is not None:
                return f"pod labels elements must be dicts; got {go_type(item)}"
            if problem := _label_dict(item):
                return problem
        return None
    return f"pod labels must be a dict or a list; got {go_type(value)}"


def command(value: object) -> str | None:
    """value.valueToCmdHelper: a string (run with sh -c) or a list of strings."""
    if isinstance(value, str):
        return None
    if isinstance(value, list | tuple):
        for item in value:
            if not isinstance(item, str):
                return (
                    f"a command must be a string or a list of strings: '{item}' is a "
                    f"{go_type(item)}, not a string"
                )
        return None
    return f"a command must be a string or list of strings. found {go_type(value)}"


def string_sequence(value: object) -> str | None:
    """value.SequenceToStringSlice: every element a string."""
    for item in value if isinstance(value, list | tuple) else []:
        if not isinstance(item, str):
            return f"'{item}' is a {go_type(item)}, not a string"
    return None


def _values_to_strings(param: str) -> Rule:
    """tiltfile.parseValuesToStrings: strings without newlines (ignore=, only=)."""

    def rule(value: object) -> str | None:
        for item in _or_sequence(value):
            if not isinstance(item, str):
                return f"{param} must be a string or a sequence of strings; found a {go_type(item)}"
            if "\n" in item:
                return f"{param} cannot contain newlines; found {param}: {go_quote(item)}"
        return None

    return rule


def image_ref(value: object) -> str | None:
    """container.ParseNamed (distribution/reference.ParseNormalizedNamed)."""
    return goparse.parse_normalized_named(str(value))


def _string_map_keys(value: object) -> str | None:
    """value.envTuples: no empty key in an environment."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "":
                return f'environment has empty key for value "{item}"'
    return None


def _positive_int(value: object) -> str | None:
    """updatesettings.valueToInt: an int (int32) or None."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if not -(2**31) <= value < 2**31:
            return f"{value} out of range (want value in signed 32-bit range)"
        return None
    return f"got {go_type(value)}, want int"


# What tilt-api.json (read at Tilt 0.37.6+) lists that Tilt v0.34.0 does not have:
# `git diff v0.34.0 2fa1737aa -- internal/tiltfile/` adds these. None: the whole builtin.
NEWER_THAN_SOURCE: dict[str, frozenset[str] | None] = {
    "initial_sync": None,
    "ci_settings": frozenset({"readiness_timeout"}),
    "update_settings": frozenset({"k8s_server_side_apply"}),
    "v1alpha1.kubernetes_apply": frozenset({"server_side_apply"}),
}

# Builtins whose Go function never calls UnpackArgs: Tilt ignores whatever they
# are given (k8scontext.Plugin.k8sContext and k8sNamespace).
IGNORES_ARGUMENTS = frozenset({"k8s_context", "k8s_namespace"})

# fn -> parameter -> the unpacker rule Tilt applies to that argument's value.
PARAM_RULES: dict[str, dict[str, Rule]] = {
    "k8s_resource": {
        "workload": name,
        "new_name": name,
        "trigger_mode": trigger_mode,
        "auto_init": optional_bool,
        "pod_readiness": pod_readiness,
        "links": links,
        "labels": label_set,
        "discovery_strategy": discovery_strategy,
    },
    "local_resource": {
        "name": name,
        "trigger_mode": trigger_mode,
        "links": links,
        "labels": label_set,
    },
    "k8s_kind": {"pod_readiness": pod_readiness},
    "trigger_mode": {"trigger_mode": trigger_mode},
}


def param_problems(
    function: str,
    args: Mapping[str, object],
    skip: set[str],
    positional: frozenset[str] = frozenset(),
) -> list[str]:
    """Values Tilt's unpackers refuse (the parameter's type is already right).

    Worded as starlark.UnpackArgs wraps them: the parameter bare when it was
    given by position, quoted when given by keyword.
    """
    problems: list[str] = []
    for param, rule in PARAM_RULES.get(function, {}).items():
        problem = rule(args[param]) if param in args and param not in skip else None
        if problem is not None:
            shown = param if param in positional else f'"{param}"'
            problems.append(f"{function}(): for parameter {shown}: {problem}")
    return problems


# --------------------------------------------------------------------- builtin bodies


def _k8s_resource(a: Mapping[str, Any]) -> list[str]:
    """tiltfileState.k8sResource (internal/tiltfile/k8s.go)."""
    resource = str(a.get("workload") or "") or str(a.get("new_name") or "")
    if not resource:
        return [
            "Resource name missing. Must give a name for an existing resource or a new_name "
            "to create a new resource."
        ]
    problems: list[str] = []
    if "port_forwards" in a and (problem := port_forwards(a["port_forwards"])):
        problems.append(f'k8s_resource "{resource}": {problem}')
    if "extra_pod_selectors" in a:
        selectors = a["extra_pod_selectors"]
        problem = extra_pod_selectors(selectors)
        if selectors is None:  # given as None: Tilt sees starlark.None, not "unset"
            problem = "pod labels must be a dict or a list; got starlark.NoneType"
        if problem:
            problems.append(problem)
    for param in ("resource_deps", "objects"):
        if param in a and (problem := string_sequence(a[param])):
            # Tilt wraps both as "resource_deps" (a copy-paste in k8s.go).
            problems.append(f"k8s_resource: resource_deps: {problem}")
    if not a.get("workload") and not a.get("objects"):
        problems.append(
            "k8s_resource doesn't specify a workload or any objects. All non-workload "
            "resources must specify 1 or more objects"
        )
    return problems


def _local_resource(a: Mapping[str, Any]) -> list[str]:
    """tiltfileState.localResource (internal/tiltfile/local_resource.go)."""
    problems: list[str] = []
    if "resource_deps" in a and (problem := string_sequence(a["resource_deps"])):
        problems.append(f"local_resource: resource_deps: {problem}")
    for param in ("dir", "serve_dir"):
        # valueToCmdHelper: the directory is read first, whether or not a command is given
        value = a.get(param)
        if value is not None and not isinstance(value, str):
            problems.append(
                "a command directory must be empty or a string: expected path | string. "
                f"Actual type: {go_type(value)}"
            )
    if "ignore" in a and (problem := _values_to_strings("ignore")(a["ignore"])):
        problems.append(problem)
    for param, env in (("cmd", "env"), ("serve_cmd", "serve_env")):
        problem = (_string_map_keys(a[env]) if env in a else None) or (
            command(a[param]) if param in a else None
        )
        if problem:
            problems.append(problem)
    # model.ToHostCmd("") and [] are empty commands; "  " is not (sh -c "").
    empty = all(a.get(param) in (None, "", []) for param in ("cmd", "serve_cmd"))
    if empty and not problems:
        problems.append("local_resource must have a cmd and/or a serve_cmd, but both were empty")
    return problems


def docker_build(a: Mapping[str, Any], function: str = "docker_build") -> list[str]:
    """tiltfileState.dockerBuild (internal/tiltfile/docker.go), before the Dockerfile is read."""
    problems: list[str] = []
    ref = str(a.get("ref", ""))
    if (problem := image_ref(ref)) is not None:
        problems.append(f'Argument 1 (ref): can\'t parse "{ref}": {problem}')
    if "dockerfile_contents" in a and a.get("dockerfile") is not None:
        problems.append("Cannot specify both dockerfile and dockerfile_contents keyword arguments")
    elif "dockerfile_contents" in a and as_string(a["dockerfile_contents"]) is None:
        problems.append("Argument (dockerfile_contents): must be string or blob.")
    if "live_update" in a and (problem := live_update_steps(a["live_update"])):
        problems.append(f"live_update: {problem}")
    if "ignore" in a and (problem := _values_to_strings("ignore")(a["ignore"])):
        problems.append(problem)
    if "only" in a:
        if problem := _values_to_strings("only")(a["only"]):
            problems.append(problem)
        else:
            for path in _or_sequence(a["only"]):
                if "*" in str(path):
                    problems.append(
                        f"'only' does not support '*' file globs. Must be a real path: {path}"
                    )
                    break
    if "entrypoint" in a and (problem := command(a["entrypoint"])):
        problems.append(problem)
    if "container_args" in a and (problem := string_sequence(a["container_args"])):
        problems.append(f"Argument 'container_args': {problem}")
    extra = a.get("extra_tag")
    for tag in [extra] if isinstance(extra, str) else list(extra or []):
        if (problem := image_ref(tag)) is not None:
            problems.append(f'Argument extra_tag="{tag}" not a valid image reference: {problem}')
            break
    return problems


def live_update_steps(value: object) -> str | None:
    """tiltfileState.liveUpdateFromSteps + v1alpha1.LiveUpdate.Validate (syncs/execs part)."""
    steps = _or_sequence(value)
    if not steps:
        return None
    no_more_fallbacks = no_more_syncs = no_more_runs = False
    syncs = execs = 0
    for step in steps:
        if not marked(step, STEP):
            return (
                "'steps' must be a list of live update steps - got value "
                f"'{step}' of type '{starlark_type(step)}'"
            )
        kind = step[STEP]
        if kind == "fall_back_on":
            if no_more_fallbacks:
                return "fall_back_on steps must appear at the start of the list"
        elif kind == "sync":
            if no_more_runs:
                return "restart container is only valid as the last step"
            if no_more_syncs:
                return "all sync steps must precede all run steps"
            no_more_fallbacks = True
            syncs += 1
            remote = str(step.get("remote_path", ""))
            if not remote.startswith("/"):
                return (
                    f'spec.syncs[{syncs - 1}]: Invalid value: "{remote}": '
                    "sync destination is not absolute"
                )
        elif kind == "run":
            if no_more_runs:
                return "restart container is only valid as the last step"
            no_more_fallbacks = no_more_syncs = True
            execs += 1
        elif kind == "restart_container":
            no_more_fallbacks = no_more_syncs = no_more_runs = True
    if syncs == 0 and execs == 0:
        return (
            "spec.syncs: Invalid value: []v1alpha1.LiveUpdateSync(nil): must contain at least "
            "1 sync or 1 exec to run on live update"
        )
    return None


def _run(a: Mapping[str, Any]) -> list[str]:
    """tiltfileState.liveUpdateRun: cmd a command, trigger strings only."""
    if "cmd" in a and (problem := command(a["cmd"])):
        return [problem]
    for trigger in _or_sequence(a.get("trigger")):
        if not isinstance(trigger, str):
            return [
                f"run cmd '{a.get('cmd')}' triggers contained value '{trigger}' of type "
                f"'{starlark_type(trigger)}'. it may only contain strings"
            ]
    return []


def _port_forward(a: Mapping[str, Any]) -> list[str]:
    """tiltfileState.portForward: link_path must parse as a URL."""
    path = a.get("link_path")
    if isinstance(path, str) and path and (problem := goparse.url_parse(path)):
        return [f"parsing `path` param: {problem}"]
    return []


def _link(a: Mapping[str, Any]) -> list[str]:
    """links.Plugin.link: url must parse (parseAndMaybeAddScheme)."""
    problem = link_url(a.get("url", ""))
    return [problem] if problem else []


def _version_settings(a: Mapping[str, Any]) -> list[str]:
    """version.Plugin.setVersionSettings: the constraint must admit the running Tilt."""
    constraint = a.get("constraint")
    if not constraint:
        return []
    result = goparse.semver_range_check(str(constraint), TILT_SOURCE_VERSION)
    if result is None:
        return []
    if result == "mismatch":
        return [
            f"you are running Tilt version {TILT_SOURCE_VERSION}, which doesn't match the "
            f"version constraint specified in your Tiltfile: '{constraint}'"
        ]
    return [result]


def _update_settings(a: Mapping[str, Any]) -> list[str]:
    """updatesettings.Plugin.updateSettings: both limits are ints >= 1."""
    for param, low in (
        ("max_parallel_updates", "max number of parallel updates must be >= 1(got: {})"),
        ("k8s_upsert_timeout_secs", "minimum k8s upsert timeout is 1s; got {}s"),
    ):
        value = a.get(param)
        if (problem := _positive_int(value)) is not None:
            return [f'update_settings: for parameter "{param}": {problem}']
        if value is not None and value < 1:
            return [low.format(value)]
    return []


def _allow_k8s_contexts(a: Mapping[str, Any]) -> list[str]:
    """k8scontext.Plugin.allowK8sContexts: strings only."""
    for item in _or_sequence(a.get("contexts")):
        if not isinstance(item, str):
            return [
                "allow_k8s_contexts contexts must be a string or a sequence of strings; "
                f"found a {go_type(item)}"
            ]
    return []


def _config_define(a: Mapping[str, Any]) -> list[str]:
    """config.configSettingDefinitionBuiltin: a non-empty name."""
    return ["'name' is required"] if a.get("name") == "" else []


def _k8s_yaml(a: Mapping[str, Any]) -> list[str]:
    """tiltfileState.k8sYaml: something to deploy."""
    if not _or_sequence(a.get("yaml")):
        return ["Empty YAML passed to k8s_yaml"]
    return []


CALL_RULES: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "k8s_resource": _k8s_resource,
    "local_resource": _local_resource,
    "docker_build": docker_build,
    "run": _run,
    "port_forward": _port_forward,
    "link": _link,
    "version_settings": _version_settings,
    "update_settings": _update_settings,
    "allow_k8s_contexts": _allow_k8s_contexts,
    "config.define_bool": _config_define,
    "config.define_string": _config_define,
    "config.define_string_list": _config_define,
    "config.define_object": _config_define,
    "k8s_yaml": _k8s_yaml,
}


def call_problems(function: str, args: Mapping[str, Any]) -> list[str]:
    """What the builtin's body refuses once every argument unpacked."""
    rule = CALL_RULES.get(function)
    return [f"{function}(): {p}" for p in rule(args)] if rule else []
