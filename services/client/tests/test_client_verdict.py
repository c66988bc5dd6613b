"""The statistical verdict on constructed samples: per resource, Holm-corrected.

(Through the real test agent and the Datadog fake: test_client_compare.py.)
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from polling_client.traces import EntrySpan
from polling_client.verdict import (
    Comparison,
    Status,
    Thresholds,
    Verdict,
    VersionStats,
    group_spans,
    holm,
)
from polling_client.verdict import (
    TestResults as Results,
)
from polling_client.verdict import compare as compare_resources

THRESHOLDS = Thresholds(alpha=0.01, latency_margin=0.10, error_margin=0.01, min_samples=30)


def latencies(n: int, median_ms: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(0.0, 0.35) * median_ms for _ in range(n)]


def stats(version: str, values: list[float], errors: int = 0) -> VersionStats:
    """``len(values)`` requests, the first ``errors`` of them failed (5xx)."""
    return VersionStats(version=version, latencies_ms=values[errors:], failed=errors)


def lognormal(version: str, n: int, median_ms: float, seed: int, errors: int = 0) -> VersionStats:
    """``n`` requests of ``version`` around ``median_ms``, the first ``errors`` failed."""
    return stats(version, latencies(n, median_ms, seed), errors)


class One:
    """The comparison of a single resource, as the old pooled tests read it."""

    def __init__(self, comparison: Comparison) -> None:
        self.verdict = comparison.verdict
        self.reasons = comparison.reasons
        self.tests = comparison.resources[0].tests if comparison.resources else Results()


def compare(
    baseline: VersionStats, canary: VersionStats, thresholds: Thresholds = THRESHOLDS
) -> One:
    grouped = {"POST /speech": {s.version: s for s in (baseline, canary) if s.requests}}
    return One(compare_resources(grouped, "v1", "v2", thresholds))


def test_a_clearly_slower_canary_is_rolled_back() -> None:
    result = compare(lognormal("v1", 200, 20.0, seed=1), lognormal("v2", 200, 40.0, seed=2))
    assert result.verdict is Verdict.ROLL_BACK
    assert result.tests.latency_p < 1e-6
    assert 1.6 < result.tests.median_ratio < 2.4
    assert "slower" in result.reasons[0]


def test_a_canary_with_more_errors_is_rolled_back_even_at_equal_latency() -> None:
    baseline = lognormal("v1", 300, 20.0, seed=3, errors=1)
    result = compare(baseline, lognormal("v2", 300, 20.0, seed=4, errors=30))
    assert result.verdict is Verdict.ROLL_BACK
    assert result.tests.failed_p < 0.01
    assert result.tests.latency_p > 0.01
    assert any("fails (5xx) more" in reason for reason in result.reasons)


def test_the_same_distribution_is_promoted() -> None:
    baseline = lognormal("v1", 300, 20.0, seed=5, errors=2)
    result = compare(baseline, lognormal("v2", 300, 20.0, seed=6, errors=2))
    assert result.verdict is Verdict.PROMOTE
    assert result.tests.latency_p > 0.01
    assert result.tests.failed_p > 0.01


def test_a_faster_canary_is_promoted_because_the_tests_are_one_sided() -> None:
    result = compare(lognormal("v1", 100, 40.0, seed=7), lognormal("v2", 100, 20.0, seed=8))
    assert result.verdict is Verdict.PROMOTE
    assert result.tests.latency_p > 0.99


def test_too_few_requests_hold_even_when_they_look_the_same() -> None:
    result = compare(lognormal("v1", 100, 20.0, seed=9), lognormal("v2", 10, 20.0, seed=10))
    assert result.verdict is Verdict.HOLD
    assert "not enough requests of v2" in result.reasons[0]


def test_a_significant_but_small_slowdown_holds_within_the_margin_and_rolls_back_past_it() -> None:
    baseline = lognormal("v1", 3000, 20.0, seed=11)
    slower = stats("v2", [value * 1.05 for value in latencies(3000, 20.0, seed=12)])
    within = compare(baseline, slower)  # +5 % against a margin of 10 %
    assert within.tests.latency_p < 0.01
    assert within.tests.median_ratio < 1.10
    assert within.verdict is Verdict.HOLD
    assert "within the margin" in within.reasons[0]
    tight = replace(THRESHOLDS, latency_margin=0.01)
    assert compare(baseline, slower, tight).verdict is Verdict.ROLL_BACK


def test_a_missing_version_holds() -> None:
    result = compare(lognormal("v1", 50, 20.0, seed=13), stats("v2", []))
    assert result.verdict is Verdict.HOLD
    assert result.reasons == ["no requests of v2: nothing to compare"]


# --------------------------------------------------------------------------- per resource

FAST, SLOW = "GET /", "POST /speech"


def spans(
    version: str, resource: str, n: int, median_ms: float, seed: int, errors: int = 0
) -> list[EntrySpan]:
    return [
        EntrySpan(version=version, duration_ms=value, error=i < errors, resource=resource)
        for i, value in enumerate(latencies(n, median_ms, seed))
    ]


def judge(traffic: list[EntrySpan], thresholds: Thresholds = THRESHOLDS) -> Comparison:
    return compare_resources(group_spans(traffic, "v1", "v2"), "v1", "v2", thresholds)


def pooled(traffic: list[EntrySpan]) -> Comparison:
    """What `client compare` did before: every entry span in one sample per version."""
    return judge([replace(span, resource="all") for span in traffic])


def test_simpsons_paradox_pooled_says_roll_back_per_resource_says_hold_for_the_mix() -> None:
    # v2 is 20% faster on both endpoints, but served mostly the slow one: per
    # resource it is better, pooled it looks worse; and a mix this skewed
    # cannot come from a random split, which the mix test says.
    traffic = [
        *spans("v1", FAST, 300, 2.0, seed=21),
        *spans("v1", SLOW, 60, 200.0, seed=22),
        *spans("v2", FAST, 60, 1.6, seed=23),
        *spans("v2", SLOW, 300, 160.0, seed=24),
    ]
    assert pooled(traffic).verdict is Verdict.ROLL_BACK
    result = judge(traffic)
    assert [r.resource for r in result.resources] == [FAST, SLOW]
    assert all(r.status is Status.OK for r in result.resources)
    assert all(r.tests.median_ratio < 1.0 for r in result.resources)
    assert result.verdict is Verdict.HOLD
    assert result.mix.p_adjusted < 1e-6
    assert len(result.reasons) == 1 and "the resource mix differs" in result.reasons[0]
    assert "GET / 83.3% of v1 vs 16.7% of v2" in result.reasons[0]


def test_one_resource_regresses_while_the_others_improve() -> None:
    traffic = [
        *spans("v1", FAST, 200, 2.0, seed=31),
        *spans("v2", FAST, 200, 1.2, seed=32),
        *spans("v1", "GET /audio/{name}", 200, 5.0, seed=33),
        *spans("v2", "GET /audio/{name}", 200, 3.0, seed=34),
        *spans("v1", SLOW, 200, 100.0, seed=35),
        *spans("v2", SLOW, 200, 150.0, seed=36),
    ]
    # Pooled, the two improvements hide the regression.
    assert pooled(traffic).verdict is not Verdict.ROLL_BACK
    result = judge(traffic)
    assert result.verdict is Verdict.ROLL_BACK
    status = {r.resource: r.status for r in result.resources}
    assert status == {FAST: Status.OK, "GET /audio/{name}": Status.OK, SLOW: Status.WORSE}
    assert len(result.reasons) == 1 and result.reasons[0].startswith(f"{SLOW}: v2 is slower")


def test_one_resource_with_too_few_samples_holds() -> None:
    traffic = [
        *spans("v1", FAST, 200, 2.0, seed=41),
        *spans("v2", FAST, 200, 2.0, seed=42),
        *spans("v1", SLOW, 100, 100.0, seed=43),
        *spans("v2", SLOW, 10, 100.0, seed=44),
    ]
    result = judge(traffic)
    assert result.verdict is Verdict.HOLD
    status = {r.resource: r.status for r in result.resources}
    assert status == {FAST: Status.OK, SLOW: Status.TOO_FEW}
    assert result.reasons[0] == f"{SLOW}: not enough requests of v2 (100/10, need 30 each)"
    # 100 against 10 is also not the mix of a random split:
    assert result.reasons[1].startswith("v1 and v2 do not serve the same requests")


def test_a_regression_beyond_the_margin_wins_over_too_few_samples() -> None:
    traffic = [
        *spans("v1", FAST, 200, 2.0, seed=51),
        *spans("v2", FAST, 200, 6.0, seed=52),
        *spans("v1", SLOW, 100, 100.0, seed=53),
        *spans("v2", SLOW, 5, 100.0, seed=54),
    ]
    assert judge(traffic).verdict is Verdict.ROLL_BACK


def test_a_resource_of_one_version_only_with_few_requests_is_listed_not_judged() -> None:
    traffic = [
        *spans("v1", FAST, 100, 2.0, seed=61),
        *spans("v2", FAST, 100, 2.0, seed=62),
        *spans("v2", "GET /new", 5, 50.0, seed=63),
        *spans("v3", FAST, 40, 50.0, seed=64),  # neither baseline nor canary: ignored
    ]
    result = judge(traffic)
    assert result.verdict is Verdict.PROMOTE
    assert [r.resource for r in result.resources] == [FAST]
    assert [(o.resource, o.version, o.requests, o.status) for o in result.only_in] == [
        ("GET /new", "v2", 5, Status.TOO_FEW)
    ]
    assert result.family_size == 4  # latency, 5xx, 4xx of GET /, and the mix


def test_a_resource_only_the_canary_serves_holds_or_rolls_back_when_it_fails() -> None:
    both = [*spans("v1", FAST, 100, 2.0, seed=65), *spans("v2", FAST, 100, 2.0, seed=66)]
    new = judge([*both, *spans("v2", "GET /new", 40, 5.0, seed=67)])
    assert new.verdict is Verdict.HOLD
    assert new.only_in[0].status is Status.ONE_VERSION
    assert new.reasons[0].startswith("GET /new: only v2 serves it (40 requests)")
    failing = judge([*both, *spans("v2", "GET <unmatched>", 40, 1.0, seed=68, errors=40)])
    assert failing.verdict is Verdict.ROLL_BACK
    assert failing.reasons[0].startswith(
        "GET <unmatched>: only v2 serves it, 100.0% of it failed or rejected"
    )


def test_a_resource_only_the_baseline_serves_holds() -> None:
    traffic = [
        *spans("v1", FAST, 100, 2.0, seed=69),
        *spans("v2", FAST, 100, 2.0, seed=70),
        *spans("v1", SLOW, 40, 5.0, seed=71),
    ]
    result = judge(traffic)
    assert result.verdict is Verdict.HOLD
    assert result.reasons[0] == (
        f"{SLOW}: only v1 serves it (40 requests): v2 never did, so its requests went elsewhere"
    )


def test_latency_is_compared_on_successes_and_4xx_is_its_own_test() -> None:
    # v2 answers a fast 404 to a third of the requests: faster, and worse.
    base = [
        EntrySpan("v1", value, False, FAST, status=200) for value in latencies(120, 10.0, seed=72)
    ]
    canary = [
        EntrySpan("v2", value if i >= 40 else 0.5, False, FAST, status=200 if i >= 40 else 404)
        for i, value in enumerate(latencies(120, 10.0, seed=73))
    ]
    result = judge([*base, *canary])
    (item,) = result.resources
    assert item.canary.successes == 80 and item.canary.rejected == 40
    assert item.tests.latency_p > 0.01  # the fast 404s are not in the latency sample
    assert item.worse_in == ("4xx",)
    assert result.verdict is Verdict.ROLL_BACK
    assert "v2 rejects (4xx) more than v1: 33.3% vs 0.0%" in result.reasons[0]


def test_holm_adjusted_p_values_by_hand() -> None:
    # sorted 0.005 0.01 0.03 0.04 -> x4 x3 x2 x1 = 0.02 0.03 0.06 0.04 -> monotone 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    assert holm([]) == []
    nan = float("nan")
    adjusted = holm([0.01, nan, 0.02])  # a test not run is not in the family
    assert adjusted[0] == pytest.approx(0.02) and adjusted[2] == pytest.approx(0.02)
    assert adjusted[1] != adjusted[1]


def test_every_p_value_is_holm_adjusted_over_all_resources() -> None:
    traffic = [
        *spans("v1", FAST, 80, 2.0, seed=71),
        *spans("v2", FAST, 80, 2.2, seed=72, errors=3),
        *spans("v1", SLOW, 80, 100.0, seed=73, errors=1),
        *spans("v2", SLOW, 80, 104.0, seed=74),
    ]
    result = judge(traffic)
    raw = [p for r in result.resources for p in r.tests.p_values()] + [result.mix.p]
    adjusted = [
        p
        for r in result.resources
        for p in (
            r.tests.latency_p_adjusted,
            r.tests.failed_p_adjusted,
            r.tests.rejected_p_adjusted,
        )
    ] + [result.mix.p_adjusted]
    assert adjusted == pytest.approx(holm(raw))
    assert all(a >= r for a, r in zip(adjusted, raw, strict=True))
    assert result.family_size == 7 and result.correction == "Holm-Bonferroni step-down"


def test_a_regression_significant_alone_is_not_after_the_correction() -> None:
    # Twenty resources of identical behaviour: uncorrected, one of them would
    # often look "significant" at 0.05; Holm keeps the family at alpha.
    loose = replace(THRESHOLDS, alpha=0.05, latency_margin=0.0)
    traffic: list[EntrySpan] = []
    for i in range(20):
        traffic += spans("v1", f"GET /r{i}", 60, 10.0, seed=580 + 2 * i)
        traffic += spans("v2", f"GET /r{i}", 60, 10.0, seed=581 + 2 * i)
    result = judge(traffic, loose)
    raw = min(r.tests.latency_p for r in result.resources)
    assert raw < 0.01  # these seeds do give a chance "finding" ...
    assert result.verdict is Verdict.PROMOTE  # ... which the correction does not report


def test_a_sub_millisecond_difference_is_not_material_whatever_the_ratio() -> None:
    """GET / answers in about 0.4 ms: +16 % is 0.07 ms, significant but under the absolute
    floor: no regression that matters (a healthy canary is promoted, not held)."""
    fast = lognormal("v1", 300, 0.40, seed=21)
    noisy = stats("v2", [value * 1.16 for value in latencies(300, 0.40, seed=22)])
    noise = compare(fast, noisy, Thresholds())
    assert noise.tests.latency_p_adjusted < 0.01 and noise.tests.median_ratio > 1.1
    assert noise.verdict is Verdict.PROMOTE, noise.reasons
    slower = stats("v2", [value + 2.0 for value in latencies(300, 0.40, seed=23)])
    slow = compare(fast, slower, Thresholds())
    assert slow.verdict is Verdict.ROLL_BACK, slow.reasons
