"""Evaluation: run the Tiltfile in Starlark with recording builtins."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import starlark as sl
import yaml

from repocheck.k8s.manifests import REPO_ROOT
from repocheck.tilt import rules
from repocheck.tilt.api import BoundCall, Param, Signature, TiltApi
from repocheck.tilt.fakes import Behaviours, TiltfileFailed
from repocheck.tilt.results import TiltfileResult, image_from

# restart_process's docker_build_with_restart (tilt-extensions
# restart_process/Tiltfile): its own parameters; every other keyword goes to
# docker_build(ref + base_suffix, context, **kwargs), the base image (so
# target= and dockerfile_contents= are fine there), and the child image
# docker_build(ref, ...) is built FROM it. Both refs are defined.
_RESTART_EXT_PARAMS = ("ref", "context", "entrypoint", "live_update")
_RESTART_EXT_OPTIONAL = ("base_suffix", "restart_file", "trigger", "exit_policy")
_RESTART_EXT_BASE_SUFFIX = "-tilt_docker_build_with_restart_base"
# KWARGS_BLACKLIST: what the extension leaves out of the child image's docker_build.
_RESTART_EXT_DROPPED = ("dockerfile", "dockerfile_contents", "target")

# Tilt builtins the interpreter itself provides (struct takes any keywords;
# a recorder could not pass functions through to Python).
_INTERPRETER_BUILTINS = frozenset({"struct"})


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


def _restart_ext_recorder(
    api: TiltApi, result: TiltfileResult, behaviours: Behaviours
) -> Callable[..., object]:
    """docker_build_with_restart as tilt-extensions' restart_process/Tiltfile runs it.

    Read at tilt-extensions a8701c0: fail() on no live_update step or a
    restart_container() step; docker_build(ref + base_suffix, context, **kwargs);
    entrypoint a string or a list; then docker_build(ref, <extension dir>,
    entrypoint=..., dockerfile_contents=..., live_update=live_update +
    [run('date > ' + restart_file, trigger=trigger)], **kwargs without
    dockerfile, dockerfile_contents and target).
    """
    docker_build = api.functions["docker_build"]
    forwarded = {p.name for p in docker_build.params} - set(_RESTART_EXT_PARAMS)
    params = tuple(Param(n, required=True) for n in _RESTART_EXT_PARAMS) + tuple(
        Param(n) for n in _RESTART_EXT_OPTIONAL
    )
    own = Signature("docker_build_with_restart", params, None, accepts_kwargs=True)
    run = api.functions["run"]

    def extension_problems(call: BoundCall) -> list[str]:
        a = call.args
        extra = {k: v for k, v in a.items() if k not in {p.name for p in params}}
        unknown = [k for k in extra if k not in forwarded]
        if unknown:
            return [
                f"unknown keyword {unknown[0]!r} (neither the extension's nor docker_build's: "
                f'docker_build: unexpected keyword argument "{unknown[0]}")'
            ]
        steps = a["live_update"]
        if not isinstance(steps, list):
            return [f"live_update: got {rules.starlark_type(steps)}, want list"]
        if not steps:
            return ["fail: `docker_build_with_restart` requires at least one live_update step"]
        if any(rules.marked(s, rules.STEP) and s[rules.STEP] == "restart_container" for s in steps):
            return [
                "fail: `docker_build_with_restart` is not compatible with live_update step: "
                "`restart_container()` (this extension is meant to REPLACE restart_container() )"
            ]
        suffix = a.get("base_suffix", _RESTART_EXT_BASE_SUFFIX)
        base = docker_build.bind(
            (), {"ref": f"{a['ref']}{suffix}", "context": a["context"], **extra}
        )
        if base.problems:
            return base.problems
        if problem := behaviours.dockerfile_problem(base.args):
            return [problem]
        if problem := result.define_ref("docker_build", str(base.args["ref"])):
            return [problem]
        entrypoint = a["entrypoint"]
        if not isinstance(entrypoint, str | list):
            return [
                "fail: `entrypoint` must be a string or list of strings: got "
                f"{rules.starlark_type(entrypoint)}"
            ]
        trigger = a.get("trigger") or []
        restart = run.bind(
            (f"date > {a.get('restart_file', '/tmp/.restart-proc')}",), {"trigger": trigger}
        )
        if restart.problems:
            return restart.problems
        child_kwargs = {k: v for k, v in extra.items() if k not in _RESTART_EXT_DROPPED}
        child = docker_build.bind(
            (),
            {
                "ref": a["ref"],
                "context": ".",
                "entrypoint": [
                    "/tilt-restart-wrapper",
                    *([entrypoint] if isinstance(entrypoint, str) else entrypoint),
                ],
                "dockerfile_contents": "FROM scratch",
                "live_update": [*steps, {rules.STEP: "run", **restart.args}],
                **child_kwargs,
            },
        )
        if child.problems:
            return child.problems
        if problem := result.define_ref("docker_build", str(a["ref"])):
            return [problem]
        behaviours.consume_steps(steps)
        return []

    def record(*args: object, **kwargs: object) -> object:
        call = own.bind(args, kwargs)
        if not call.problems:
            call.problems.extend(
                p if p.startswith("docker_build") else f"docker_build_with_restart(): {p}"
                for p in extension_problems(call)
            )
        result.calls.append(call)
        result.problems.extend(call.problems)
        if not call.problems:
            result.images.append(image_from(call.args, restart=True))
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
    fakes = Behaviours(
        repo_root,
        result,
        flags or {},
        env if env is not None else {},
        kube_context if kube_context is not None else default_kube_context(repo_root),
    )
    behaviours = fakes.table()

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
    module["TRIGGER_MODE_AUTO"] = {rules.TRIGGER_MODE: "auto"}
    module["TRIGGER_MODE_MANUAL"] = {rules.TRIGGER_MODE: "manual"}
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

    # Tilt's interpreter is starlark-go: print() exists; type annotations and
    # positional-only parameters do not parse (f-strings are off in both).
    globals_ = sl.Globals.extended_by([sl.LibraryExtension.StructType, sl.LibraryExtension.Print])
    dialect = sl.Dialect.extended()
    dialect.enable_types = sl.DialectTypes.DISABLE
    dialect.enable_positional_only_arguments = False
    prelude = _namespace_prelude(dotted, api.values, constants)
    sl.eval(module, sl.parse("<tilt builtins>", prelude, dialect), globals_)

    restart_ext = _restart_ext_recorder(api, result, fakes)

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
        undefined = re.search(r"Variable `([^`]+)` not found\s+--> (\S+)", message)
        if marker in message:
            result.failure = message.split(marker, 1)[1].splitlines()[0]
        elif undefined:
            # starlark-go's resolver words it so (and Tilt reports it before running anything)
            result.failure = f"{undefined[2]}: undefined: {undefined[1]}"
        else:
            result.failure = message
    # Tilt stops at the first error; only a clean run reaches this check.
    if result.failure is None and not result.problems and (unused := fakes.unconsumed_problem()):
        result.problems.append(unused)
    return result


def default_kube_context(repo_root: Path = REPO_ROOT) -> str:
    config = yaml.safe_load((repo_root / "k8s" / "kind" / "cluster.yaml").read_text())
    return f"kind-{config['name']}"
