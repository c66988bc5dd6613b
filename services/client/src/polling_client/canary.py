"""`client canary`: a progressive rollout driven by the verdict of `client compare`.

Like Flagger's or Argo Rollouts' canary analysis, with the statistics of
:mod:`polling_client.verdict`: the canary's weight is set to each step in turn
(``--steps 10,25,50,100``); at the end of each step (``--interval``) the same
analysis as ``compare`` runs on that step's spans only (the query window is the
step's absolute start and end). promote -> next step; roll back -> every
request to the baseline, exit status 1; hold -> one more interval, analysed
again from the step's start, up to ``--max-holds``, then roll back. The last
step, 100, is the promotion: set, not analysed (no baseline traffic is left).

Where the weights go, locally: the running local gateway's weights file
(``DATA_DIR/.stack/weights.json``, :mod:`devstack.gateway.weights`), never the
checked-in ``k8s/istio``. Ctrl-C puts back what was found at start (the file's
content, or no file: the Istio files' weights).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import httpx

from polling_client.analysis import Analysis, analyse
from polling_client.cli import CanaryCommand
from polling_client.errors import ClientError, ConfigError
from polling_client.kube import KubeWeights
from polling_client.poll import PollOptions, run_poll
from polling_client.traces import fetch_traces
from polling_client.window import NS, Window, iso


class Interrupted(Exception):
    """Ctrl-C (SIGINT) or SIGTERM during the rollout."""


class WeightsFile:
    """The local gateway's weights file: set, and put back as it was found."""

    def __init__(self, path: Path, baseline: str, canary: str) -> None:
        self.path = path
        self.baseline = baseline
        self.canary = canary
        if not path.parent.is_dir():
            raise ConfigError(
                f"--weights-file {path}: no directory {path.parent} (is `uv run stack up`"
                " running with this data directory?)"
            )
        if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise ConfigError(f"--weights-file {path}: cannot be written")
        try:
            self.found: str | None = path.read_text() if path.exists() else None
        except OSError as error:
            raise ConfigError(f"--weights-file {path}: cannot be read ({error.strerror})") from None

    def describe_found(self) -> str:
        if self.found is None:
            return "no weights file (the Istio files' weights)"
        return f"{self.path}: {' '.join(self.found.split())}"

    def set(self, canary_percent: int) -> None:
        weights = {self.baseline: 100 - canary_percent, self.canary: canary_percent}
        self._write(json.dumps({"weights": weights}) + "\n")

    def restore(self) -> None:
        if self.found is None:
            self.path.unlink(missing_ok=True)
        else:
            self._write(self.found)

    def _write(self, text: str) -> None:
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            temporary.write_text(text)
            os.replace(temporary, self.path)  # the gateway never reads half a file
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise ConfigError(f"--weights-file {self.path}: cannot be written ({error})") from None


@dataclass
class Step:
    weight: int
    start_ns: int
    end_ns: int = 0
    verdict: str = ""  # promote, hold (analyses that held), roll back, set (the last step)
    holds: int = 0
    reasons: list[str] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)  # by version, analysed
    analyses: list[tuple[int, str]] = field(default_factory=list)  # (end ns, verdict) each


@dataclass
class Rollout:
    steps: list[Step] = field(default_factory=list)
    result: str = ""  # promoted, rolled back, interrupted, stopped
    final: dict[str, int] = field(default_factory=dict)  # weights left in force
    note: str = ""


class Weights(Protocol):
    """Where the canary's weight is set: the local gateway's file or the cluster."""

    def set(self, canary_percent: int) -> None: ...
    def restore(self) -> None: ...
    def describe_found(self) -> str: ...


def run_canary(command: CanaryCommand) -> int:
    analysis = command.analysis
    weights: Weights
    if command.kube:
        weights = KubeWeights(
            command.kubectl, analysis.baseline, analysis.canary, command.kube_context
        )
    else:
        weights = WeightsFile(command.weights_file, analysis.baseline, analysis.canary)
    _check_reachable(command)
    rollout = Rollout()
    status = 0
    with _interruptible():
        try:
            status = _roll_out(command, weights, rollout)
        except Interrupted:
            weights.restore()
            rollout.result = "interrupted"
            rollout.note = (
                "interrupted: weights restored to what was found at start,"
                f" {weights.describe_found()}"
            )
            status = 130
        except ClientError as error:
            weights.restore()
            rollout.result = "stopped"
            rollout.note = (
                f"{error}; weights restored to what was found at start, {weights.describe_found()}"
            )
            status = 2 if isinstance(error, ConfigError) else 1
    print(render(rollout, command), flush=True)
    if command.analysis.plot is not None and rollout.steps:
        # matplotlib takes seconds to import: only when a plot is asked for.
        from polling_client.plot import plot_rollout

        canary = command.analysis.canary
        plot_rollout(_timeline(rollout, canary), canary, command.analysis.plot)
    if rollout.note:
        print(f"client: {rollout.note}", file=sys.stderr, flush=True)
    return status


def _check_reachable(command: CanaryCommand) -> None:
    """Before any weight changes: the source and (with --rate) the gateway answer."""
    analysis = command.analysis
    if analysis.source == "agent":
        fetch_traces(analysis.agent_url, analysis.timeout_s)
    if command.rate > 0:
        try:
            httpx.get(command.gateway_url + "/", timeout=analysis.timeout_s)
        except httpx.HTTPError as error:
            raise ClientError(
                f"cannot reach the gateway at {command.gateway_url}: {type(error).__name__}"
                " (is `uv run stack up` running?)"
            ) from None


def _roll_out(command: CanaryCommand, weights: Weights, rollout: Rollout) -> int:
    analysis = command.analysis
    total = len(command.steps)
    for index, weight in enumerate(command.steps, 1):
        step = Step(weight, time.time_ns())
        rollout.steps.append(step)
        weights.set(weight)
        if weight == 100:
            step.end_ns = step.start_ns
            step.verdict = "set"
            _live(f"step {index}/{total}: {analysis.canary} at 100%: promoted")
            break
        while True:
            _load_or_wait(command)
            step.end_ns = time.time_ns()
            judged = analyse(analysis, Window(step.start_ns, step.end_ns))
            step.verdict = judged.comparison.verdict.value
            step.reasons = judged.comparison.reasons
            step.requests = _requests(judged)
            step.analyses.append((step.end_ns, step.verdict))
            line = (
                f"step {index}/{total}: {analysis.canary} at {weight}% for"
                f" {(step.end_ns - step.start_ns) / NS:.0f}s,"
                f" {_counts(step, command)}: {step.verdict.upper()}"
            )
            _live(f"{line} - {step.reasons[0]}" if step.reasons else line)
            if step.verdict != "hold":
                break
            step.holds += 1
            if step.holds > command.max_holds:
                step.verdict = "roll back"
                step.reasons = [f"held {step.holds} times (--max-holds {command.max_holds})"]
                break
        if step.verdict == "roll back":
            weights.set(0)
            rollout.result = "rolled back"
            rollout.final = {analysis.baseline: 100, analysis.canary: 0}
            return 1
    rollout.result = "promoted"
    rollout.final = {analysis.baseline: 0, analysis.canary: 100}
    return 0


def _load_or_wait(command: CanaryCommand) -> None:
    """One interval: with --rate, `client poll`'s traffic through the gateway; else a wait."""
    if command.rate <= 0:
        time.sleep(command.interval_s)  # (SIGINT raises Interrupted here)
        return
    options = PollOptions(
        gateway_url=command.gateway_url,
        books_url=None,
        rate=command.rate,
        count=None,
        duration_s=command.interval_s,
        concurrency=32,
        timeout_s=command.analysis.timeout_s,
        mix=command.mix,
    )
    try:
        summary = asyncio.run(run_poll(options))
    finally:
        _install()  # the poll's loop put the default handlers back
    if summary.interrupted:
        raise Interrupted


def _raise_interrupted(_signum: int, _frame: FrameType | None) -> None:
    raise Interrupted


def _install() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _raise_interrupted)


@contextmanager
def _interruptible() -> Iterator[None]:
    """SIGINT and SIGTERM raise Interrupted (during the load, the poll stops and says so)."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    _install()
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _timeline(rollout: Rollout, canary: str) -> list[tuple[float, int, str]]:
    """(seconds since the rollout began, canary weight then, verdict or "") for a plot."""
    begin = rollout.steps[0].start_ns
    points: list[tuple[float, int, str]] = []
    for step in rollout.steps:
        points.append(((step.start_ns - begin) / NS, step.weight, ""))
        for end_ns, verdict in step.analyses:
            points.append(((end_ns - begin) / NS, step.weight, verdict))
        if step.verdict == "set":
            points.append(((step.end_ns - begin) / NS, step.weight, "set"))
    if canary in rollout.final:  # (rolled back: the weight it was left at)
        last = max(s.end_ns for s in rollout.steps)
        points.append(((last - begin) / NS, rollout.final[canary], ""))
    return points


def _requests(judged: Analysis) -> dict[str, int]:
    comparison = judged.comparison
    counts = {comparison.baseline: 0, comparison.canary: 0}
    for item in comparison.resources:
        counts[comparison.baseline] += item.baseline.requests
        counts[comparison.canary] += item.canary.requests
    for one in comparison.only_in:
        counts[one.version] = counts.get(one.version, 0) + one.requests
    return counts


def _counts(step: Step, command: CanaryCommand) -> str:
    return "/".join(
        f"{step.requests.get(v, 0)} {v}"
        for v in (command.analysis.baseline, command.analysis.canary)
    )


def _live(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def render(rollout: Rollout, command: CanaryCommand) -> str:
    if command.output_format == "json":
        return json.dumps(document(rollout, command), indent=2)
    baseline, canary = command.analysis.baseline, command.analysis.canary
    header = ["step", f"{canary} %", "start", "seconds", f"{baseline}/{canary} requests", "holds"]
    rows = [
        [
            str(i),
            str(step.weight),
            iso(step.start_ns),
            f"{(step.end_ns - step.start_ns) / NS:.0f}",
            _counts(step, command) if step.requests else "-",
            str(step.holds),
            step.verdict,
        ]
        for i, step in enumerate(rollout.steps, 1)
    ]
    header.append("verdict")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]
    final = ", ".join(f"{v} {w}%" for v, w in rollout.final.items()) or "as found at start"
    lines.append(f"result: {rollout.result.upper()} - weights now {final}")
    return "\n".join(lines)


def document(rollout: Rollout, command: CanaryCommand) -> dict[str, Any]:
    return {
        "baseline": command.analysis.baseline,
        "canary": command.analysis.canary,
        "weights": "kube" if command.kube else str(command.weights_file),
        "interval_s": command.interval_s,
        "steps": [
            {
                "weight": step.weight,
                "start": iso(step.start_ns),
                "end": iso(step.end_ns),
                "verdict": step.verdict,
                "holds": step.holds,
                "requests": step.requests,
                "reasons": step.reasons,
            }
            for step in rollout.steps
        ],
        "result": rollout.result,
        "final_weights": rollout.final or None,
        "note": rollout.note,
    }
