"""Draws the latency distributions of the two versions to a PNG, one panel per resource.

Each panel is one resource (the ``max_panels`` busiest, by requests of both
versions): the empirical cumulative distributions of baseline and canary on a
log latency axis, where a slower version's curve sits to the right. Tick
labels are plain milliseconds at 1-2-5 steps (``0.5``, ``1``, ``2``, ``5``,
``10`` ...; finer steps when the data spans less than a decade), never
scientific notation, and minor ticks carry no label, so labels cannot
overprint. Uses matplotlib's Agg backend: no display needed.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from polling_client.errors import ClientError
from polling_client.verdict import Comparison, ResourceComparison

_COLORS = ("tab:blue", "tab:orange")
DEFAULT_PANELS = 6


def milliseconds(value: float, _position: float | None = None) -> str:
    """A log-axis tick label in plain numbers: ``0.45``, ``3.5``, ``20``, ``1500``.

    Three significant digits below 100 (ticks inside one decade, e.g. 3.5, stay
    apart from 4), whole numbers above: never ``3e-01``-style notation.
    """
    if value <= 0 or not math.isfinite(value):
        return ""
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def _panel(axis: Axes, item: ResourceComparison) -> None:
    for stats, role, color in (
        (item.baseline, "baseline", _COLORS[0]),
        (item.canary, "canary", _COLORS[1]),
    ):
        values = np.sort(np.clip(np.asarray(stats.latencies_ms, dtype=float), 1e-3, None))
        if not values.size:
            continue
        axis.step(
            values,
            np.arange(1, values.size + 1) / values.size,
            where="post",
            color=color,
            label=f"{stats.version} ({role}, n={values.size})",
        )
    axis.set_xscale("log")
    axis.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.xaxis.set_major_formatter(FuncFormatter(milliseconds))
    axis.xaxis.set_minor_formatter(NullFormatter())
    axis.set_ylim(0, 1.02)
    axis.set_title(f"{item.resource}: {item.status.value}", fontsize=10)
    axis.set_xlabel("entry span latency (ms)")
    axis.set_ylabel("share at or below")
    axis.grid(True, which="major", alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")


def plot_latencies(comparison: Comparison, path: Path, max_panels: int = DEFAULT_PANELS) -> None:
    busiest = sorted(
        comparison.resources,
        key=lambda item: (-(item.baseline.requests + item.canary.requests), item.resource),
    )[:max_panels]
    if not busiest:
        raise ClientError("no resource served by both versions: nothing to plot")
    columns = min(2, len(busiest))
    rows = math.ceil(len(busiest) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6.0 * columns, 3.6 * rows), squeeze=False)
    for axis, item in zip(axes.flat, busiest, strict=False):
        _panel(axis, item)
    for axis in list(axes.flat)[len(busiest) :]:
        axis.set_visible(False)
    left_out = len(comparison.resources) - len(busiest)
    more = f" ({left_out} quieter resources not drawn)" if left_out > 0 else ""
    figure.suptitle(
        f"{comparison.baseline} vs {comparison.canary} latency per resource"
        f" - verdict: {comparison.verdict.value}{more}"
    )
    _save(figure, path)


_VERDICT_COLORS = {
    "promote": "tab:green",
    "hold": "tab:orange",
    "roll back": "tab:red",
    "set": "tab:blue",
}


def plot_rollout(points: list[tuple[float, int, str]], canary: str, path: Path) -> None:
    """The canary's weight over a rollout (a step line) and each verdict where it was given.

    ``points``: (seconds since the start, the canary's weight from then on, the
    verdict given then or "").
    """
    figure, axis = plt.subplots(figsize=(8.0, 3.6))
    times = [t for t, _, _ in points]
    weights = [w for _, w, _ in points]
    axis.step(times, weights, where="post", color="tab:gray", label=f"{canary} weight (%)")
    for verdict, color in _VERDICT_COLORS.items():
        marked = [(t, w) for t, w, v in points if v == verdict]
        if marked:
            axis.scatter(*zip(*marked, strict=True), color=color, zorder=3, label=verdict)
    axis.set_ylim(-5, 105)
    axis.set_xlabel("seconds since the rollout began")
    axis.set_ylabel(f"{canary} weight (%)")
    axis.legend(loc="upper left", fontsize="small")
    axis.set_title(f"{canary} rollout: weight and verdicts")
    _save(figure, path)


def _save(figure: Figure, path: Path) -> None:
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=100)
    except OSError as exc:
        raise ClientError(f"cannot write the plot to {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(figure)
