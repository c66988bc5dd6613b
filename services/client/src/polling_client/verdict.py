"""Is the canary (v2) worse than the baseline (v1)? The statistical verdict, per resource.

Versions are compared **per resource** (the route template of the entry span:
``GET /``, ``POST /speech``, ``GET /audio/{name}`` ...), never pooled: the
endpoint mix of two samples differs by chance, and pooling them compares
mixes, not versions (Simpson's paradox: v2 can be faster on every endpoint and
still look slower pooled, because it happened to serve more of the slow one).

Every answer is a **success** (HTTP 2xx/3xx), a **rejection** (4xx) or a
**failure** (5xx; a span with no status and the error flag counts as one).
A canary that answers a fast 404 or 429 is not faster, it is worse. For each
resource seen in both versions, three one-sided tests ask "is the canary
worse?":

- latency: Mann-Whitney U test (``scipy.stats.mannwhitneyu``,
  ``alternative="greater"``) on the durations of the *successful* answers
  only; it makes no assumption about the shape of the distributions, which
  are long-tailed;
- 5xx rate and 4xx rate: Fisher's exact test each (``scipy.stats.fisher_exact``,
  ``alternative="greater"``) on the 2x2 table of that outcome / the rest;
  exact, so valid for the small counts a canary sees.

And one test over all resources, **the mix**: the split between versions is
random per request, so both should serve the same resource mix. A G-test
(log-likelihood ratio, ``scipy.stats.chi2_contingency(lambda_="log-likelihood")``)
on the version x resource table; a significant difference means the versions
are not serving the same requests (a route the canary lost or gained, a
routing rule that is not a random split), and per-resource statistics alone
cannot be trusted then.

Testing many hypotheses at level alpha each would find some "regression" by
chance far more often than alpha. The family-wise error rate over all the
tests (3 per resource, when each applies, and the mix) is held at alpha with
**Holm's step-down method** (Holm-Bonferroni): sort the p-values
p(1) <= ... <= p(k); the adjusted p(i) is max over j <= i of
min(1, (k - j + 1) p(j)); a test is significant when its adjusted p-value is
below alpha. It is uniformly more powerful than Bonferroni and needs no
assumption about how the tests depend on each other.

A regression of a resource counts when it is both *significant* and
*material* (canary median success latency more than ``latency_margin`` above
the baseline's and more than ``latency_floor_ms`` above it in absolute terms,
or canary 5xx or 4xx rate more than ``error_margin`` above).
Resources only one version served, with at least ``min_samples`` requests,
are judged too: only the canary's, mostly failing or rejected (beyond the
margin) -> roll back (it answers what the baseline never did, and badly);
only the canary's otherwise, or only the baseline's (the canary never served
it) -> hold. Verdict:

- ``roll back``: some resource has a significant and material regression,
  or the canary alone answers a resource with failures or rejections;
- ``hold``: some resource has fewer than ``min_samples`` requests in either
  version, a regression that is significant but within the margin, a
  resource served by one version only, or a significant mix difference;
- ``promote``: otherwise.
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
SUCCESS, REJECTED, FAILED = "success", "4xx", "5xx"


class Verdict(StrEnum):
    PROMOTE = "promote"
    HOLD = "hold"
    ROLL_BACK = "roll back"


class Status(StrEnum):
    """What one resource contributes to the verdict."""

    OK = "ok"
    TOO_FEW = "too few"  # hold
    WITHIN_MARGIN = "within margin"  # hold
    ONE_VERSION = "one version"  # served by one version only: hold
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
    def outcome(self) -> str: ...  # SUCCESS, REJECTED or FAILED


@dataclass(frozen=True)
class VersionStats:
    version: str
    latencies_ms: Sequence[float]  # of the successful answers (2xx/3xx) only
    rejected: int = 0  # 4xx
    failed: int = 0  # 5xx

    @property
    def successes(self) -> int:
        return len(self.latencies_ms)

    @property
    def requests(self) -> int:
        return self.successes + self.rejected + self.failed

    @property
    def rejected_rate(self) -> float:
        return self.rejected / self.requests if self.requests else 0.0

    @property
    def failed_rate(self) -> float:
        return self.failed / self.requests if self.requests else 0.0

    def latency_percentiles(self) -> dict[float, float]:
        return percentiles(self.latencies_ms)


@dataclass(frozen=True)
class TestResults:
    latency_u: float = math.nan  # Mann-Whitney U of canary vs baseline successes
    latency_p: float = math.nan  # one-sided: canary slower (raw)
    latency_p_adjusted: float = math.nan  # Holm-adjusted over the family
    median_ratio: float = math.nan  # canary median / baseline median (successes)
    median_diff_ms: float = math.nan  # canary median - baseline median (successes)
    failed_p: float = math.nan  # Fisher exact, one-sided: canary fails (5xx) more (raw)
    failed_p_adjusted: float = math.nan
    failed_rate_diff: float = math.nan  # canary 5xx rate - baseline 5xx rate
    rejected_p: float = math.nan  # Fisher exact, one-sided: canary rejects (4xx) more
    rejected_p_adjusted: float = math.nan
    rejected_rate_diff: float = math.nan

    def p_values(self) -> tuple[float, float, float]:
        return (self.latency_p, self.failed_p, self.rejected_p)

    def adjusted(self, values: Sequence[float]) -> TestResults:
        latency, failed, rejected = values
        return replace(
            self,
            latency_p_adjusted=latency,
            failed_p_adjusted=failed,
            rejected_p_adjusted=rejected,
        )


@dataclass(frozen=True)
class ResourceComparison:
    resource: str
    baseline: VersionStats
    canary: VersionStats
    tests: TestResults
    status: Status
    reasons: list[str] = field(default_factory=list)
    worse_in: tuple[str, ...] = ()  # "latency", "5xx", "4xx": what made it worse


@dataclass(frozen=True)
class OneSided:
    """A resource only one of the two versions served."""

    resource: str
    version: str
    requests: int
    failures: int = 0  # 4xx + 5xx
    status: Status = Status.TOO_FEW  # TOO_FEW (listed only), ONE_VERSION (hold), WORSE
    reason: str = ""


@dataclass(frozen=True)
class MixTest:
    """The G-test of version x resource counts: do both versions serve the same mix?"""

    statistic: float = math.nan
    dof: int = 0
    p: float = math.nan
    p_adjusted: float = math.nan
    differing: list[str] = field(default_factory=list)  # "GET /: 25.0% vs 75.0%"

    @property
    def ran(self) -> bool:
        return not math.isnan(self.p)


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
    mix: MixTest = field(default_factory=MixTest)
    correction: str = CORRECTION


def group_spans(
    spans: Iterable[Span], baseline: str, canary: str
) -> dict[str, dict[str, VersionStats]]:
    """resource -> version -> stats, for the two versions compared."""
    latencies: dict[tuple[str, str], list[float]] = {}
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for span in spans:
        if span.version not in (baseline, canary):
            continue
        key = (span.resource, span.version)
        values = latencies.setdefault(key, [])
        outcome = span.outcome
        if outcome == SUCCESS:
            values.append(span.duration_ms)
        else:
            tally = counts.setdefault(key, {})
            tally[outcome] = tally.get(outcome, 0) + 1
    grouped: dict[str, dict[str, VersionStats]] = {}
    for (resource, version), values in sorted(latencies.items()):
        tally = counts.get((resource, version), {})
        grouped.setdefault(resource, {})[version] = VersionStats(
            version, values, tally.get(REJECTED, 0), tally.get(FAILED, 0)
        )
    return grouped


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given; NaN (no test) stays NaN."""
    tested = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    order = sorted(tested, key=lambda i: p_values[i])
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    count = len(tested)
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (count - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def _fisher(canary_hits: int, canary_n: int, base_hits: int, base_n: int) -> float:
    table = [[canary_hits, canary_n - canary_hits], [base_hits, base_n - base_hits]]
    return float(scipy_stats.fisher_exact(table, alternative="greater").pvalue)


def run_tests(baseline: VersionStats, canary: VersionStats) -> TestResults:
    """The three one-sided tests, unadjusted; needs at least one request of each version.

    The latency test needs a successful answer of each version: without, it is
    not run (NaN, left out of the family) and the rates tell the story.
    """
    latency_u = latency_p = median_ratio = median_diff_ms = math.nan
    if baseline.successes and canary.successes:
        mwu = scipy_stats.mannwhitneyu(
            canary.latencies_ms, baseline.latencies_ms, alternative="greater"
        )
        latency_u, latency_p = float(mwu.statistic), float(mwu.pvalue)
        base_median = baseline.latency_percentiles()[50.0]
        canary_median = canary.latency_percentiles()[50.0]
        median_ratio = canary_median / base_median if base_median > 0 else math.inf
        median_diff_ms = canary_median - base_median
    return TestResults(
        latency_u=latency_u,
        latency_p=latency_p,
        median_ratio=median_ratio,
        median_diff_ms=median_diff_ms,
        failed_p=_fisher(canary.failed, canary.requests, baseline.failed, baseline.requests),
        failed_rate_diff=canary.failed_rate - baseline.failed_rate,
        rejected_p=_fisher(canary.rejected, canary.requests, baseline.rejected, baseline.requests),
        rejected_rate_diff=canary.rejected_rate - baseline.rejected_rate,
    )


def mix_test(grouped: dict[str, dict[str, VersionStats]], baseline: str, canary: str) -> MixTest:
    """G-test on the version x resource table (every resource, one-sided ones too).

    Not run (NaN) with fewer than two resources or a version with no request.
    The resources named as differing are those whose adjusted standardized
    residual is beyond 2 (the cells that carry the difference).
    """
    resources = sorted(grouped)
    rows = [
        [grouped[r][v].requests if v in grouped[r] else 0 for r in resources]
        for v in (
            baseline,
            canary,
        )
    ]
    if len(resources) < 2 or not all(sum(row) for row in rows):
        return MixTest()
    result = scipy_stats.chi2_contingency(rows, correction=False, lambda_="log-likelihood")
    totals = [sum(row) for row in rows]
    grand = sum(totals)
    differing = []
    for column, resource in enumerate(resources):
        column_total = rows[0][column] + rows[1][column]
        expected = totals[0] * column_total / grand
        variance = expected * (1 - totals[0] / grand) * (1 - column_total / grand)
        residual = (rows[0][column] - expected) / math.sqrt(variance) if variance > 0 else 0.0
        if abs(residual) > 2.0:
            shares = [rows[i][column] / totals[i] for i in (0, 1)]
            differing.append(
                f"{resource} {shares[0]:.1%} of {baseline} vs {shares[1]:.1%} of {canary}"
            )
    return MixTest(
        statistic=float(result.statistic),
        dof=int(result.dof),
        p=float(result.pvalue),
        differing=differing,
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
        _one_sided(resource, stats, canary, thresholds)
        for resource, by_version in grouped.items()
        if resource not in paired
        for stats in by_version.values()
    ]
    raw = {r: run_tests(v[baseline], v[canary]) for r, v in paired.items()}
    mix = mix_test(grouped, baseline, canary)
    flat = [p for t in raw.values() for p in t.p_values()] + [mix.p]
    adjusted = holm(flat)
    mix = replace(mix, p_adjusted=adjusted[-1])
    resources = []
    for index, (resource, unadjusted) in enumerate(raw.items()):
        tests = unadjusted.adjusted(adjusted[3 * index : 3 * index + 3])
        stats = paired[resource]
        resources.append(_judge(resource, stats[baseline], stats[canary], tests, thresholds))
    family_size = sum(1 for p in flat if not math.isnan(p))

    def result(verdict: Verdict, reasons: list[str]) -> Comparison:
        return Comparison(
            baseline, canary, thresholds, resources, only_in, verdict, reasons, family_size, mix
        )

    worse = [_said(r) for r in resources if r.status is Status.WORSE]
    worse += [f"{o.resource}: {o.reason}" for o in only_in if o.status is Status.WORSE]
    if worse:
        return result(Verdict.ROLL_BACK, worse)
    held = [_said(r) for r in resources if r.status in (Status.TOO_FEW, Status.WITHIN_MARGIN)]
    held += [f"{o.resource}: {o.reason}" for o in only_in if o.status is Status.ONE_VERSION]
    if mix.ran and mix.p_adjusted < thresholds.alpha:
        held.append(
            f"{baseline} and {canary} do not serve the same requests: the resource mix"
            f" differs (G-test p={mix.p_adjusted:.2g}, Holm):"
            f" {'; '.join(mix.differing) or 'no single resource stands out'}"
        )
    if not resources:
        seen = {s.version for s in only_in}
        missing = [v for v in (baseline, canary) if v not in seen]
        what = f"no requests of {' or '.join(missing)}" if missing else "no resource in common"
        return result(Verdict.HOLD, [f"{what}: nothing to compare"])
    if held:
        return result(Verdict.HOLD, held)
    return result(
        Verdict.PROMOTE,
        [
            f"no significant regression of {canary} against {baseline} on any of"
            f" {len(resources)} resources, and the same resource mix"
        ],
    )


def _one_sided(resource: str, stats: VersionStats, canary: str, thresholds: Thresholds) -> OneSided:
    failures = stats.rejected + stats.failed
    one = OneSided(resource, stats.version, stats.requests, failures)
    if stats.requests < thresholds.min_samples:
        return one  # listed, not judged: too few to say it is more than chance
    if stats.version == canary:
        share = failures / stats.requests
        if share > thresholds.error_margin:
            return replace(
                one,
                status=Status.WORSE,
                reason=(
                    f"only {canary} serves it, {share:.1%} of it failed or rejected"
                    f" ({stats.failed} 5xx, {stats.rejected} 4xx of {stats.requests}):"
                    " the canary answers what the baseline never did"
                ),
            )
        return replace(
            one,
            status=Status.ONE_VERSION,
            reason=(
                f"only {canary} serves it ({stats.requests} requests): the baseline never"
                " did; check the route is meant to be new"
            ),
        )
    return replace(
        one,
        status=Status.ONE_VERSION,
        reason=(
            f"only {stats.version} serves it ({stats.requests} requests): {canary} never"
            " did, so its requests went elsewhere"
        ),
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
    alpha = thresholds.alpha
    latency_significant = tests.latency_p_adjusted < alpha
    latency_material = (
        tests.median_ratio > 1.0 + thresholds.latency_margin
        and tests.median_diff_ms > thresholds.latency_floor_ms
    )
    failed_significant = tests.failed_p_adjusted < alpha
    failed_material = tests.failed_rate_diff > thresholds.error_margin
    rejected_significant = tests.rejected_p_adjusted < alpha
    rejected_material = tests.rejected_rate_diff > thresholds.error_margin

    c, b = canary.version, baseline.version

    def result(
        status: Status, reasons: list[str], worse_in: tuple[str, ...] = ()
    ) -> ResourceComparison:
        return ResourceComparison(resource, baseline, canary, tests, status, reasons, worse_in)

    reasons: list[str] = []
    worse_in: list[str] = []
    if latency_significant and latency_material:
        worse_in.append("latency")
        reasons.append(
            f"{c} is slower than {b} on successful answers: median x{tests.median_ratio:.2f},"
            f" Mann-Whitney p={tests.latency_p_adjusted:.2g} (Holm)"
        )
    if failed_significant and failed_material:
        worse_in.append(FAILED)
        reasons.append(
            f"{c} fails (5xx) more than {b}: {canary.failed_rate:.1%} vs"
            f" {baseline.failed_rate:.1%}, Fisher p={tests.failed_p_adjusted:.2g} (Holm)"
        )
    if rejected_significant and rejected_material:
        worse_in.append(REJECTED)
        reasons.append(
            f"{c} rejects (4xx) more than {b}: {canary.rejected_rate:.1%} vs"
            f" {baseline.rejected_rate:.1%}, Fisher p={tests.rejected_p_adjusted:.2g} (Holm)"
        )
    if reasons:
        return result(Status.WORSE, reasons, tuple(worse_in))
    few = [s.version for s in (baseline, canary) if s.requests < thresholds.min_samples]
    if few:
        return result(
            Status.TOO_FEW,
            [
                f"not enough requests of {', '.join(few)}"
                f" ({baseline.requests}/{canary.requests}, need {thresholds.min_samples} each)"
            ],
        )
    noise = ""
    if latency_significant and tests.median_diff_ms <= thresholds.latency_floor_ms:
        # Measurably but negligibly slower: under the absolute floor the difference is
        # scheduling noise on a fast resource (Kayenta's pass: significant, not material).
        noise = (
            f"no regression that matters: {c} is significantly slower by"
            f" {tests.median_diff_ms:+.2f} ms on the median, under the"
            f" {thresholds.latency_floor_ms:g} ms floor"
        )
    elif latency_significant:
        reasons.append(
            f"{c} is significantly slower (p={tests.latency_p_adjusted:.2g}, Holm) but within"
            f" the margin (median x{tests.median_ratio:.2f})"
        )
    if failed_significant:
        reasons.append(
            f"{c} fails (5xx) significantly more (p={tests.failed_p_adjusted:.2g}, Holm) but"
            f" within the margin ({tests.failed_rate_diff * 100:+.1f} points)"
        )
    if rejected_significant:
        reasons.append(
            f"{c} rejects (4xx) significantly more (p={tests.rejected_p_adjusted:.2g}, Holm)"
            f" but within the margin ({tests.rejected_rate_diff * 100:+.1f} points)"
        )
    if reasons:
        return result(Status.WITHIN_MARGIN, reasons)
    return result(Status.OK, [noise or "no significant regression"])
