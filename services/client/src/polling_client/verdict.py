"""Is the canary (v2) worse than the baseline (v1)? The statistical verdict.

Two one-sided tests, each asking "is the canary worse?":

- latency: Mann-Whitney U test (``scipy.stats.mannwhitneyu``,
  ``alternative="greater"``) on the durations of the text-to-speech entry spans;
  it makes no assumption about the shape of the distributions, which are
  long-tailed for latency.
- errors: Fisher's exact test (``scipy.stats.fisher_exact``,
  ``alternative="greater"``) on the 2x2 table of errors / successes; exact,
  so valid for the small error counts a canary sees.

A regression counts when it is both *significant* (p < alpha) and *material*
(canary median latency more than ``latency_margin`` above the baseline's, or
canary error rate more than ``error_margin`` above the baseline's). Verdict:

- ``roll back``: a significant and material regression in latency or errors;
- ``hold``: fewer than ``min_samples`` requests for a version, or a
  regression that is significant but within the margin (real but small:
  watch it, gather more traffic);
- ``promote``: enough requests and no significant regression.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from scipy import stats as scipy_stats

from polling_client.stats import percentiles
from polling_client.thresholds import Thresholds


class Verdict(StrEnum):
    PROMOTE = "promote"
    HOLD = "hold"
    ROLL_BACK = "roll back"


@dataclass(frozen=True)
class VersionStats:
    version: str
    latencies_ms: Sequence[float]
    errors: int

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def latency_percentiles(self) -> dict[float, float]:
        return percentiles(self.latencies_ms)


@dataclass(frozen=True)
class TestResults:
    latency_u: float = math.nan  # Mann-Whitney U of canary vs baseline
    latency_p: float = math.nan  # one-sided: canary slower
    median_ratio: float = math.nan  # canary median / baseline median
    error_p: float = math.nan  # Fisher exact, one-sided: canary errs more
    error_rate_diff: float = math.nan  # canary error rate - baseline error rate


@dataclass(frozen=True)
class Comparison:
    baseline: VersionStats
    canary: VersionStats
    thresholds: Thresholds
    verdict: Verdict
    reasons: list[str] = field(default_factory=list)
    tests: TestResults = field(default_factory=TestResults)


def run_tests(baseline: VersionStats, canary: VersionStats) -> TestResults:
    """Both one-sided tests; needs at least one request of each version."""
    mwu = scipy_stats.mannwhitneyu(
        canary.latencies_ms, baseline.latencies_ms, alternative="greater"
    )
    base_median = baseline.latency_percentiles()[50.0]
    canary_median = canary.latency_percentiles()[50.0]
    table = [
        [canary.errors, canary.requests - canary.errors],
        [baseline.errors, baseline.requests - baseline.errors],
    ]
    fisher = scipy_stats.fisher_exact(table, alternative="greater")
    return TestResults(
        latency_u=float(mwu.statistic),
        latency_p=float(mwu.pvalue),
        median_ratio=canary_median / base_median if base_median > 0 else math.inf,
        error_p=float(fisher.pvalue),
        error_rate_diff=canary.error_rate - baseline.error_rate,
    )


def compare(baseline: VersionStats, canary: VersionStats, thresholds: Thresholds) -> Comparison:
    def result(verdict: Verdict, reasons: list[str], tests: TestResults) -> Comparison:
        return Comparison(baseline, canary, thresholds, verdict, reasons, tests)

    if baseline.requests == 0 or canary.requests == 0:
        missing = baseline.version if baseline.requests == 0 else canary.version
        return result(Verdict.HOLD, [f"no requests of {missing}"], TestResults())

    tests = run_tests(baseline, canary)
    latency_significant = tests.latency_p < thresholds.alpha
    latency_material = tests.median_ratio > 1.0 + thresholds.latency_margin
    errors_significant = tests.error_p < thresholds.alpha
    errors_material = tests.error_rate_diff > thresholds.error_margin

    c, b = canary.version, baseline.version
    reasons: list[str] = []
    if latency_significant and latency_material:
        reasons.append(
            f"{c} is slower than {b}: median x{tests.median_ratio:.2f},"
            f" Mann-Whitney p={tests.latency_p:.2g}"
        )
    if errors_significant and errors_material:
        reasons.append(
            f"{c} errs more than {b}: {canary.error_rate:.1%} vs {baseline.error_rate:.1%},"
            f" Fisher p={tests.error_p:.2g}"
        )
    if reasons:
        return result(Verdict.ROLL_BACK, reasons, tests)

    few = [s.version for s in (baseline, canary) if s.requests < thresholds.min_samples]
    if few:
        reasons.append(
            f"not enough requests of {', '.join(few)} (need {thresholds.min_samples} each)"
        )
    if latency_significant:
        reasons.append(
            f"{c} is significantly slower (p={tests.latency_p:.2g}) but within the margin"
            f" (median x{tests.median_ratio:.2f})"
        )
    if errors_significant:
        reasons.append(
            f"{c} errs significantly more (p={tests.error_p:.2g}) but within the margin"
            f" ({tests.error_rate_diff * 100:+.1f} points)"
        )
    if reasons:
        return result(Verdict.HOLD, reasons, tests)
    return result(Verdict.PROMOTE, [f"no significant regression of {c} against {b}"], tests)
