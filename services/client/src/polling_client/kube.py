"""`client canary --kube`: the weights of the kind cluster's VirtualServices, set with kubectl.

The same VirtualServices the Tiltfile's ``--canary-weight`` patches: in
namespace ``apps``, every ``http`` rule whose route is split over exactly the
subsets v1 and v2 (``text-to-speech`` and ``edge``). Each change is one
``kubectl patch --type=json`` per VirtualService, with a ``test`` of the
rule's subsets before each ``replace`` of a weight, so a rule that moved since
it was read is refused rather than mis-patched. Only the local kind cluster:
any other current context is refused before anything is read, as the
Tiltfile does. Restoring puts back the weights read at start.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Any

from polling_client.errors import ClientError, ConfigError

NAMESPACE = "apps"
VIRTUAL_SERVICES = ("text-to-speech", "edge")
KIND_CONTEXT = "kind-speech-mesh"  # k8s/kind/cluster.yaml's cluster, as kind names it


@dataclass(frozen=True)
class Split:
    """One weighted rule: ``spec.http[rule]``, its destinations' subsets and weights."""

    virtual_service: str
    rule: int
    subsets: tuple[str, ...]
    weights: tuple[int, ...]


class KubeWeights:
    """Set and restore the canary weights of the cluster's weighted VirtualServices."""

    def __init__(self, kubectl: str, baseline: str, canary: str, context: str = KIND_CONTEXT):
        self.kubectl = kubectl
        self.baseline = baseline
        self.canary = canary
        current = self._run("config", "current-context").strip()
        if current != context:
            raise ConfigError(
                f"refusing kube context {current!r}: client canary --kube changes only the local"
                f" kind cluster {context!r} (kubectl config use-context {context})"
            )
        self.context = context
        self.found = [split for name in VIRTUAL_SERVICES for split in self._splits(name)]
        if not self.found:
            raise ClientError(
                f"no VirtualService of {', '.join(VIRTUAL_SERVICES)} in namespace {NAMESPACE}"
                f" splits over {baseline} and {canary}: is the cluster deployed (tilt up)?"
            )

    def describe_found(self) -> str:
        return "; ".join(
            f"{s.virtual_service} http[{s.rule}] "
            + " ".join(f"{n}={w}" for n, w in zip(s.subsets, s.weights, strict=True))
            for s in self.found
        )

    def set(self, canary_percent: int) -> None:
        wanted = {self.baseline: 100 - canary_percent, self.canary: canary_percent}
        self._patch({s: tuple(wanted[n] for n in s.subsets) for s in self.found})

    def restore(self) -> None:
        self._patch({s: s.weights for s in self.found})

    def _patch(self, weights: dict[Split, tuple[int, ...]]) -> None:
        for name in VIRTUAL_SERVICES:
            operations: list[dict[str, Any]] = []
            for split, values in weights.items():
                if split.virtual_service != name:
                    continue
                for index, (subset, weight) in enumerate(zip(split.subsets, values, strict=True)):
                    path = f"/spec/http/{split.rule}/route/{index}"
                    operations.append(
                        {"op": "test", "path": f"{path}/destination/subset", "value": subset}
                    )
                    operations.append({"op": "replace", "path": f"{path}/weight", "value": weight})
            if operations:
                self._run(
                    *("--context", self.context, "-n", NAMESPACE, "patch", "virtualservice", name),
                    *("--type=json", "-p", json.dumps(operations)),
                )

    def _splits(self, name: str) -> list[Split]:
        text = self._run(
            *("--context", self.context, "-n", NAMESPACE, "get", "virtualservice", name),
            *("-o", "json", "--ignore-not-found"),
        )
        if not text.strip():
            return []
        try:
            rules = json.loads(text)["spec"]["http"]
        except (ValueError, KeyError, TypeError):
            raise ClientError(f"kubectl get virtualservice {name}: not a VirtualService") from None
        splits = []
        for index, rule in enumerate(rules):
            routes = rule.get("route") or []
            subsets = tuple(str((r.get("destination") or {}).get("subset", "")) for r in routes)
            if sorted(subsets) == sorted((self.baseline, self.canary)):
                weights = tuple(int(r.get("weight", 0)) for r in routes)
                splits.append(Split(name, index, subsets, weights))
        return splits

    def _run(self, *args: str) -> str:
        try:
            done = subprocess.run(
                [self.kubectl, *args], capture_output=True, text=True, timeout=60, check=False
            )
        except OSError as error:
            raise ConfigError(f"cannot run {self.kubectl}: {error.strerror}") from None
        except subprocess.TimeoutExpired:
            raise ClientError(f"{self.kubectl} {' '.join(args[:6])}: no answer in 60 s") from None
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise ClientError(f"{self.kubectl} {' '.join(args[:6])} failed: {why}")
        return done.stdout
