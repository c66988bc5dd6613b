"""Draws the latency distributions of the two versions to a PNG.

Left: histograms on log-spaced bins (latency is long-tailed); right: the
empirical cumulative distributions, where a slower version's curve sits to the
right. Uses matplotlib's Agg backend: no display needed.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import LogFormatter, ScalarFormatter

from polling_client.errors import ClientError
from polling_client.verdict import Comparison

_COLORS = ("tab:blue", "tab:orange")


def plot_latencies(comparison: Comparison, path: Path) -> None:
    samples = [
        (comparison.baseline.version + " (baseline)", np.asarray(comparison.baseline.latencies_ms)),
        (comparison.canary.version + " (canary)", np.asarray(comparison.canary.latencies_ms)),
    ]
    present = [values for _, values in samples if values.size]
    if not present:
        raise ClientError("no latencies to plot")
    low = max(min(float(values.min()) for values in present), 1e-3)
    high = max(*(float(values.max()) for values in present), low * 1.01)
    bins = np.geomspace(low, high, 40)

    figure, (hist_ax, cdf_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    for (label, values), color in zip(samples, _COLORS, strict=True):
        if not values.size:
            continue
        hist_ax.hist(np.clip(values, low, high), bins=bins, alpha=0.55, color=color, label=label)
        ordered = np.sort(values)
        cdf_ax.step(
            ordered,
            np.arange(1, ordered.size + 1) / ordered.size,
            where="post",
            color=color,
            label=label,
        )
    for axis in (hist_ax, cdf_ax):
        axis.set_xscale("log")
        axis.xaxis.set_major_formatter(ScalarFormatter())
        # Label only 2x and 5x between decades: every minor tick overlaps.
        axis.xaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.4)))
        axis.tick_params(axis="x", which="minor", labelsize=7)
        axis.set_xlabel("latency of the text-to-speech entry span (ms)")
        axis.legend()
        axis.grid(True, which="both", alpha=0.3)
    hist_ax.set_ylabel("requests")
    cdf_ax.set_ylabel("share of requests at or below")
    figure.suptitle(
        f"{comparison.baseline.version} vs {comparison.canary.version} latency"
        f" - verdict: {comparison.verdict.value}"
    )
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=100)
    except OSError as exc:
        raise ClientError(f"cannot write the plot to {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(figure)
