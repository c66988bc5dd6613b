"""Is the canary (v2) worse than the baseline (v1)? The statistical verdict, per resource.

Versions are compared **per resource** (the route template of the entry span:
``GET /``, ``POST /speech``, ``GET /audio/{name}`` ...), never pooled: the
endpoint mix of two samples differs by chance, and pooling them compares
mixes, not versions (Simpson's paradox: v2 can be faster on every endpoint and
still look slower pooled, because it happened to serve more of the slow one).

For each resource seen in both versions, two one-sided tests ask "is the
canary worse?":

- latency: Mann-Whitney U test (``scipy.stats.mannwhitneyu``,
  ``alternative="greater"``) on the durations of the entry spans; it makes no
  assumption about the shape of the distributions, which are long-tailed;
- errors: Fisher's exact test (``scipy.stats.fisher_exact``,
  ``alternative="greater"``) on the 2x2 table of errors / successes; exact,
  so valid for the small error counts a canary sees.

Testing 2 hypotheses on each of m resources at level alpha each would find
some "regression" by chance far more often than alpha. The family-wise error
rate over all 2m tests is held at alpha with **Holm's step-down method**
(Holm-Bonferroni): sort the p-values p(1) <= ... <= p(k); the adjusted
p(i) is max over j <= i of min(1, (k - j + 1) p(j)); a test is significant
when its adjusted p-value is below alpha. It is uniformly more powerful than
Bonferroni and needs no assumption about how the tests depend on each other.

A regression of a resource counts when it is both *significant* and
*material* (canary median latency more than ``latency_margin`` above the
baseline's, or canary error rate more than ``error_margin`` above). Verdict:

- ``roll back``: some resource has a significant and material regression;
- ``hold``: some resource has fewer than ``min_samples`` requests in either
  version, or a regression that is significant but within the margin;
- ``promote``: otherwise.

Resources seen in only one version are listed, not compared.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

from scipy import stats as scipy_stats

from polling_client.stats import percentiles
from polling_client.thresholds import Thresholds

CORRECTION = "Holm-Bonferroni step-down"


class Verdict(StrEnum):
    PROMOTE = "promote"
    HOLD = "hold"
    ROLL_BACK = "roll back"


class Status(StrEnum):
    """What one resource contributes to the verdict."""

    OK = "ok"
    TOO_FEW = "too few"  # hold
    WITHIN_MARGIN = "within margin"  # hold
    WORSE = "worse"  # roll back


class Span(Protocol):
    """What a comparison needs of an entry span (every source yields these)."""

    @property
    def version(self) -> str: ...
    @property
    def resource(self) -> str: ...
    @property
    def duration_ms(self) -> float: ...
    @property
    def error(self) -> bool: ...


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
    latency_p: float = math.nan  # one-sided: canary slower (raw)
    latency_p_adjusted: float = math.nan  # Holm-adjusted over the family
    median_ratio: float = math.nan  # canary median / baseline median
    error_p: float = math.nan  # Fisher exact, one-sided: canary errs more (raw)
    error_p_adjusted: float = math.nan
    error_rate_diff: float = math.nan  # canary error rate - baseline error rate


@dataclass(frozen=True)
class ResourceComparison:
    resource: str
    baseline: VersionStats
    canary: VersionStats
    tests: TestResults
    status: Status
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class OneSided:
    """A resource only one of the two versions served: listed, not compared."""

    resource: str
    version: str
    requests: int


@dataclass(frozen=True)
class Comparison:
    baseline: str
    canary: str
    thresholds: Thresholds
    resources: list[ResourceComparison]
    only_in: list[OneSided]
    verdict: Verdict
    reasons: list[str]
    family_size: int  # number of tests Holm's correction covered
    correction: str = CORRECTION


def group_spans(
    spans: Iterable[Span], baseline: str, canary: str
) -> dict[str, dict[str, VersionStats]]:
    """resource -> version -> stats, for the two versions compared."""
    latencies: dict[tuple[str, str], list[float]] = {}
    errors: dict[tuple[str, str], int] = {}
    for span in spans:
        if span.version not in (baseline, canary):
            continue
        key = (span.resource, span.version)
        latencies.setdefault(key, []).append(span.duration_ms)
        errors[key] = errors.get(key, 0) + int(span.error)
    grouped: dict[str, dict[str, VersionStats]] = {}
    for (resource, version), values in sorted(latencies.items()):
        grouped.setdefault(resource, {})[version] = VersionStats(
            version, values, errors[(resource, version)]
        )
    return grouped


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    count = len(p_values)
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (count - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def run_tests(baseline: VersionStats, canary: VersionStats) -> TestResults:
    """Both one-sided tests, unadjusted; needs at least one request of each version."""
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


def compare(
    grouped: dict[str, dict[str, VersionStats]],
    baseline: str,
    canary: str,
    thresholds: Thresholds,
) -> Comparison:
    """The per-resource comparison and the overall verdict (see the module docstring)."""
    paired = {r: v for r, v in grouped.items() if baseline in v and canary in v}
    only_in = [
        OneSided(resource, version, stats.requests)
        for resource, by_version in grouped.items()
        if resource not in paired
        for version, stats in by_version.items()
    ]
    raw = {r: run_tests(v[baseline], v[canary]) for r, v in paired.items()}
    flat = [p for t in raw.values() for p in (t.latency_p, t.error_p)]
    adjusted = iter(holm(flat))
    resources = []
    for resource, unadjusted in raw.items():
        tests = replace(
            unadjusted, latency_p_adjusted=next(adjusted), error_p_adjusted=next(adjusted)
        )
        stats = paired[resource]
        resources.append(_judge(resource, stats[baseline], stats[canary], tests, thresholds))

    def result(verdict: Verdict, reasons: list[str]) -> Comparison:
        return Comparison(
            baseline, canary, thresholds, resources, only_in, verdict, reasons, len(flat)
        )

    if not resources:
        seen = {s.version for s in only_in}
        missing = [v for v in (baseline, canary) if v not in seen]
        what = f"no requests of {' or '.join(missing)}" if missing else "no resource in common"
        return result(Verdict.HOLD, [f"{what}: nothing to compare"])
    worse = [r for r in resources if r.status is Status.WORSE]
    if worse:
        return result(Verdict.ROLL_BACK, [_said(r) for r in worse])
    held = [r for r in resources if r.status in (Status.TOO_FEW, Status.WITHIN_MARGIN)]
    if held:
        return result(Verdict.HOLD, [_said(r) for r in held])
    return result(
        Verdict.PROMOTE,
        [
            f"no significant regression of {canary} against {baseline} on any of"
            f" {len(resources)} resources"
        ],
    )


def _said(comparison: ResourceComparison) -> str:
    return f"{comparison.resource}: {'; '.join(comparison.reasons)}"


def _judge(
    resource: str,
    baseline: VersionStats,
    canary: VersionStats,
    tests: TestResults,
    thresholds: Thresholds,
) -> ResourceComparison:
    latency_significant = tests.latency_p_adjusted < thresholds.alpha
    latency_material = tests.median_ratio > 1.0 + thresholds.latency_margin
    errors_significant = tests.error_p_adjusted < thresholds.alpha
    errors_material = tests.error_rate_diff > thresholds.error_margin

    c, b = canary.version, baseline.version

    def result(status: Status, reasons: list[str]) -> ResourceComparison:
        return ResourceComparison(resource, baseline, canary, tests, status, reasons)

    reasons: list[str] = []
    if latency_significant and latency_material:
        reasons.append(
            f"{c} is slower than {b}: median x{tests.median_ratio:.2f},"
            f" Mann-Whitney p={tests.latency_p_adjusted:.2g} (Holm)"
        )
    if errors_significant and errors_material:
        reasons.append(
            f"{c} errs more than {b}: {canary.error_rate:.1%} vs {baseline.error_rate:.1%},"
            f" Fisher p={tests.error_p_adjusted:.2g} (Holm)"
        )
    if reasons:
        return result(Status.WORSE, reasons)
    few = [s.version for s in (baseline, canary) if s.requests < thresholds.min_samples]
    if few:
        return result(
            Status.TOO_FEW,
            [
                f"not enough requests of {', '.join(few)}"
                f" ({baseline.requests}/{canary.requests}, need {thresholds.min_samples} each)"
            ],
        )
    if latency_significant:
        reasons.append(
            f"{c} is significantly slower (p={tests.latency_p_adjusted:.2g}, Holm) but within"
            f" the margin (median x{tests.median_ratio:.2f})"
        )
    if errors_significant:
        reasons.append(
            f"{c} errs significantly more (p={tests.error_p_adjusted:.2g}, Holm) but within"
            f" the margin ({tests.error_rate_diff * 100:+.1f} points)"
        )
    if reasons:
        return result(Status.WITHIN_MARGIN, reasons)
    return result(Status.OK, ["no significant regression"])
