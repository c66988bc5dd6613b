"""Tilt's API: each builtin's signature as Tilt unpacks it, loaded from ``tilt-api.json``."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repocheck.k8s.manifests import REPO_ROOT
from repocheck.tilt import rules
from repocheck.tilt.argtypes import mistyped

TILT_API_ENV = "TILT_API_JSON"


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
        given = frozenset(p.name for p, _ in zip(positional, args, strict=False))
        wrong_type = mistyped(self.name, bound, unset, given)
        problems.extend(wrong_type.values())
        problems.extend(rules.param_problems(self.name, bound, set(wrong_type), given))
        if not problems:
            # The builtin's body runs only once every argument unpacked.
            problems.extend(rules.call_problems(self.name, bound))
        if self.name in rules.IGNORES_ARGUMENTS:
            problems = []
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
            newer = rules.NEWER_THAN_SOURCE.get(name, frozenset())
            if newer is None:
                continue  # not a builtin yet in the Tilt the rules were read from
            kept = [p for p in spec["params"] if p["name"] not in newer]
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
                for p in kept
            )
            most = spec.get("max_positional")
            functions[name] = Signature(
                name,
                params,
                None if most is None else min(most, len(kept)),
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
