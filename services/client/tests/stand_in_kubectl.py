"""A stand-in ``kubectl`` for `client canary --kube` tests: records every call, answers from
the rendered manifests.

``python stand_in_kubectl.py ARGS...`` with STAND_IN_KUBE_DIR: a directory holding
``state.json`` (``{"context": "...", "virtualservices": {"apps/edge": {...}}}``, the
VirtualServices as rendered from k8s/istio) and ``calls.jsonl``, where each call's
arguments are appended. Understands what the client runs: ``config current-context``;
``[--context C] -n NS get virtualservice NAME -o json [--ignore-not-found]``;
``[--context C] -n NS patch virtualservice NAME --type=json -p PATCH`` (RFC 6902
``test`` and ``replace``, as the API server applies them: a failed test refuses the
whole patch). Anything else, or a context other than the current one: exit 1.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def pointer(document: Any, path: str) -> tuple[Any, str | int]:
    *parents, last = [part for part in path.split("/")[1:]]
    for part in parents:
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document, int(last) if isinstance(document, list) else last


def main(args: list[str]) -> int:
    directory = Path(os.environ["STAND_IN_KUBE_DIR"])
    with (directory / "calls.jsonl").open("a") as calls:
        calls.write(json.dumps(args) + "\n")
    state = json.loads((directory / "state.json").read_text())
    if args == ["config", "current-context"]:
        print(state["context"])
        return 0
    if args[:2] == ["--context", state["context"]]:
        args = args[2:]
    elif "--context" in args:
        print("error: context was not found", file=sys.stderr)
        return 1
    if args[:1] != ["-n"] or args[3:4] != ["virtualservice"]:
        print(f"error: stand-in kubectl does not know {args}", file=sys.stderr)
        return 1
    key = f"{args[1]}/{args[4]}"
    found = state["virtualservices"].get(key)
    if args[2] == "get":
        if found is None:
            return 0 if "--ignore-not-found" in args else 1
        print(json.dumps(found))
        return 0
    if args[2] == "patch" and found is not None and "--type=json" in args:
        patched = json.loads(json.dumps(found))
        for op in json.loads(args[args.index("-p") + 1]):
            parent, last = pointer(patched, op["path"])
            if op["op"] == "test" and parent[last] != op["value"]:
                print(f"The request is invalid: testing {op['path']} failed", file=sys.stderr)
                return 1
            if op["op"] == "replace":
                parent[last] = op["value"]
        state["virtualservices"][key] = patched
        (directory / "state.json").write_text(json.dumps(state))
        print(f"virtualservice.networking.istio.io/{args[4]} patched")
        return 0
    print(f"error: stand-in kubectl does not know {args}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
