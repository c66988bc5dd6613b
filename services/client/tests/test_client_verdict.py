"""The statistical verdict on constructed samples."""

from __future__ import annotations

import random

from polling_client.verdict import Thresholds, Verdict, VersionStats, compare

THRESHOLDS = Thresholds(alpha=0.01, latency_margin=0.10, error_margin=0.01, min_samples=30)


def latencies(n: int, median_ms: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(0.0, 0.35) * median_ms for _ in range(n)]


def stats(version: str, values: list[float], errors: int = 0) -> VersionStats:
    return VersionStats(version=version, latencies_ms=values, errors=errors)


def test_a_clearly_slower_canary_is_rolled_back() -> None:
    result = compare(
        stats("v1", latencies(200, 20.0, seed=1)),
        stats("v2", latencies(200, 40.0, seed=2)),
        THRESHOLDS,
    )
    assert result.verdict is Verdict.ROLL_BACK
    assert result.tests.latency_p < 1e-6
    assert 1.6 < result.tests.median_ratio < 2.4
    assert "slower" in result.reasons[0]


def test_a_canary_with_more_errors_is_rolled_back_even_at_equal_latency() -> None:
    result = compare(
        stats("v1", latencies(300, 20.0, seed=3), errors=1),
        stats("v2", latencies(300, 20.0, seed=4), errors=30),
        THRESHOLDS,
    )
    assert result.verdict is Verdict.ROLL_BACK
    assert result.tests.error_p < 0.01
    assert result.tests.latency_p > 0.01
    assert any("errs more" in reason for reason in result.reasons)


def test_the_same_distribution_is_promoted() -> None:
    result = compare(
        stats("v1", latencies(300, 20.0, seed=5), errors=2),
        stats("v2", latencies(300, 20.0, seed=6), errors=2),
        THRESHOLDS,
    )
    assert result.verdict is Verdict.PROMOTE
    assert result.tests.latency_p > 0.01
    assert result.tests.error_p > 0.01


def test_a_faster_canary_is_promoted_because_the_tests_are_one_sided() -> None:
    result = compare(
        stats("v1", latencies(100, 40.0, seed=7)),
        stats("v2", latencies(100, 20.0, seed=8)),
        THRESHOLDS,
    )
    assert result.verdict is Verdict.PROMOTE
    assert result.tests.latency_p > 0.99


def test_too_few_requests_hold_even_when_they_look_the_same() -> None:
    result = compare(
        stats("v1", latencies(100, 20.0, seed=9)),
        stats("v2", latencies(10, 20.0, seed=10)),
        THRESHOLDS,
    )
    assert result.verdict is Verdict.HOLD
    assert "not enough requests of v2" in result.reasons[0]


def test_a_significant_but_small_slowdown_holds() -> None:
    baseline = latencies(3000, 20.0, seed=11)
    result = compare(
        stats("v1", baseline),
        stats("v2", [value * 1.05 for value in latencies(3000, 20.0, seed=12)]),
        THRESHOLDS,
    )
    assert result.tests.latency_p < 0.01
    assert result.tests.median_ratio < 1.10
    assert result.verdict is Verdict.HOLD
    assert "within the margin" in result.reasons[0]


def test_a_slowdown_below_the_margin_is_rolled_back_with_a_tighter_margin() -> None:
    tight = Thresholds(alpha=0.01, latency_margin=0.01, error_margin=0.01, min_samples=30)
    result = compare(
        stats("v1", latencies(3000, 20.0, seed=11)),
        stats("v2", [value * 1.05 for value in latencies(3000, 20.0, seed=12)]),
        tight,
    )
    assert result.verdict is Verdict.ROLL_BACK


def test_a_missing_version_holds() -> None:
    result = compare(stats("v1", latencies(50, 20.0, seed=13)), stats("v2", []), THRESHOLDS)
    assert result.verdict is Verdict.HOLD
    assert result.reasons == ["no requests of v2"]
