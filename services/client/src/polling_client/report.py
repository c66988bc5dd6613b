"""Renders results for people (aligned tables) and for programs (JSON)."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from polling_client.tally import PollSummary
from polling_client.thresholds import Thresholds

if TYPE_CHECKING:
    from polling_client.verdict import Comparison, ResourceComparison, VersionStats


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _number(value: float) -> float | None:
    """Six significant digits (not decimals: a p-value of 1e-15 is not 0); None for NaN/inf."""
    return None if math.isnan(value) or math.isinf(value) else float(f"{value:.6g}")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        rest = zip(row[1:], widths[1:], strict=True)
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in rest]
        lines.append("  ".join(cells).rstrip())
    return lines


def poll_table(summary: PollSummary, max_error_rate: float) -> str:
    header = ["version", "requests", "share", "errors", "error %", "p50 ms", "p95 ms", "p99 ms"]
    rows = [
        [
            row.name,
            str(row.requests),
            _pct(row.share),
            str(row.errors),
            f"{row.error_rate:.1%}",
            _ms(row.p50_ms),
            _ms(row.p95_ms),
            _ms(row.p99_ms),
        ]
        for row in summary.rows
    ]
    rows.append(
        ["total", str(summary.requests), "", str(summary.errors), f"{summary.error_rate:.1%}"]
        + [""] * 3
    )
    lines = _table(header, rows)
    lines.append(f"{summary.requests} requests in {summary.elapsed_s:.1f}s ({summary.rate:.1f}/s)")
    if summary.error_reasons:
        reasons = ", ".join(f"{reason} x{n}" for reason, n in summary.error_reasons.items())
        lines.append(f"errors: {reasons}")
    passed = summary.error_rate <= max_error_rate
    lines.append(
        f"error rate {summary.error_rate:.2%} {'<=' if passed else '>'} threshold"
        f" {max_error_rate:.2%}: {'OK' if passed else 'FAILED'}"
    )
    return "\n".join(lines)


def poll_json(summary: PollSummary, max_error_rate: float) -> str:
    document: dict[str, Any] = {
        "requests": summary.requests,
        "errors": summary.errors,
        "error_rate": round(summary.error_rate, 6),
        "max_error_rate": max_error_rate,
        "passed": summary.error_rate <= max_error_rate,
        "elapsed_s": round(summary.elapsed_s, 3),
        "error_reasons": summary.error_reasons,
        "versions": {
            row.name: {
                "requests": row.requests,
                "share": None if row.share is None else round(row.share, 6),
                "errors": row.errors,
                "p50_ms": _number(row.p50_ms),
                "p95_ms": _number(row.p95_ms),
                "p99_ms": _number(row.p99_ms),
            }
            for row in summary.rows
        },
    }
    return json.dumps(document, indent=2)


def _version_cells(stats: VersionStats) -> list[str]:
    pct = stats.latency_percentiles()
    return [
        stats.version,
        str(stats.requests),
        f"{stats.rejected} ({stats.rejected_rate:.1%})",
        f"{stats.failed} ({stats.failed_rate:.1%})",
        *[_ms(pct[q]) for q in (50.0, 95.0, 99.0)],
    ]


def _result(item: ResourceComparison) -> str:
    if item.worse_in:
        return f"worse: {', '.join(item.worse_in)}"
    return item.status.value


def compare_table(
    comparison: Comparison, *, source: str, service: str, ignored: list[str], window: str = ""
) -> str:
    b, c = comparison.baseline, comparison.canary
    header = [
        "resource",
        "version",
        "requests",
        "4xx",
        "5xx",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "latency p",
        "5xx p",
        "4xx p",
        "result",
    ]
    rows: list[list[str]] = []
    for item in comparison.resources:
        tests = item.tests
        rows.append([item.resource, *_version_cells(item.baseline), "", "", "", ""])
        rows.append(
            [
                "",
                *_version_cells(item.canary),
                _p(tests.latency_p_adjusted),
                _p(tests.failed_p_adjusted),
                _p(tests.rejected_p_adjusted),
                _result(item),
            ]
        )
    lines = [
        f"{service} entry spans from {source}: {b} (baseline) vs {c} (canary), per resource",
    ]
    if window:
        lines.append(f"window: {window}")
    lines += ["", *_table(header, rows), ""]
    for one in comparison.only_in:
        judged = f": {one.status.value}" if one.reason else ", not compared"
        lines.append(
            f"only in {one.version}: {one.resource} ({one.requests} requests,"
            f" {one.failures} 4xx/5xx{judged})"
        )
    mix = comparison.mix
    if mix.ran:
        lines.append(
            f"resource mix: G-test {mix.statistic:.2f} on {mix.dof} degrees of freedom,"
            f" p={_p(mix.p_adjusted)} (Holm)"
            + (f"; differs on {'; '.join(mix.differing)}" if mix.differing else "")
        )
    lines.append(
        f"tests per resource, one-sided ({c} worse): latency of successful answers (2xx/3xx)"
        " Mann-Whitney U, 5xx rate and 4xx rate Fisher exact; the resource mix G-test;"
        f" p-values adjusted with {comparison.correction} over {comparison.family_size} tests"
        " (family-wise error <= alpha)"
    )
    lines.append(f"thresholds: {comparison.thresholds.describe()}")
    lines.extend(f"note: {text}" for text in ignored)
    lines.append("")
    lines.append(f"verdict: {comparison.verdict.value.upper()} - {'; '.join(comparison.reasons)}")
    return "\n".join(lines)


def compare_document(
    comparison: Comparison,
    *,
    source: str,
    service: str,
    ignored: list[str],
    window: dict[str, Any] | None = None,
) -> dict[str, Any]:
    def version(stats: VersionStats) -> dict[str, Any]:
        pct = stats.latency_percentiles()
        return {
            "version": stats.version,
            "requests": stats.requests,
            "successes": stats.successes,
            "rejected_4xx": stats.rejected,
            "failed_5xx": stats.failed,
            "rejected_rate": round(stats.rejected_rate, 6),
            "failed_rate": round(stats.failed_rate, 6),
            "p50_ms": _number(pct[50.0]),
            "p95_ms": _number(pct[95.0]),
            "p99_ms": _number(pct[99.0]),
        }

    def rate_test(p: float, adjusted: float, diff: float, what: str) -> dict[str, Any]:
        return {
            "name": "fisher-exact",
            "alternative": f"canary {what} more",
            "p_value": _number(p),
            "p_adjusted": _number(adjusted),
            "rate_diff": _number(diff),
        }

    thresholds: Thresholds = comparison.thresholds
    mix = comparison.mix
    return {
        "source": source,
        "service": service,
        "baseline": comparison.baseline,
        "canary": comparison.canary,
        "window": window,
        "correction": {
            "method": "holm",
            "name": comparison.correction,
            "family_size": comparison.family_size,
            "controls": "family-wise error rate",
        },
        "thresholds": {
            "alpha": thresholds.alpha,
            "latency_margin": thresholds.latency_margin,
            "latency_floor_ms": thresholds.latency_floor_ms,
            "error_margin": thresholds.error_margin,
            "min_samples": thresholds.min_samples,
        },
        "resources": [
            {
                "resource": item.resource,
                "baseline": version(item.baseline),
                "canary": version(item.canary),
                "latency_test": {
                    "name": "mann-whitney-u",
                    "alternative": "canary slower (successful answers)",
                    "u": _number(item.tests.latency_u),
                    "p_value": _number(item.tests.latency_p),
                    "p_adjusted": _number(item.tests.latency_p_adjusted),
                    "median_ratio": _number(item.tests.median_ratio),
                },
                "failed_test": rate_test(
                    item.tests.failed_p,
                    item.tests.failed_p_adjusted,
                    item.tests.failed_rate_diff,
                    "fails (5xx)",
                ),
                "rejected_test": rate_test(
                    item.tests.rejected_p,
                    item.tests.rejected_p_adjusted,
                    item.tests.rejected_rate_diff,
                    "rejects (4xx)",
                ),
                "status": item.status.value,
                "worse_in": list(item.worse_in),
                "reasons": item.reasons,
            }
            for item in comparison.resources
        ],
        "only_in": [
            {
                "resource": one.resource,
                "version": one.version,
                "requests": one.requests,
                "failures": one.failures,
                "status": one.status.value,
                "reason": one.reason,
            }
            for one in comparison.only_in
        ],
        "mix_test": {
            "name": "g-test",
            "statistic": _number(mix.statistic),
            "dof": mix.dof,
            "p_value": _number(mix.p),
            "p_adjusted": _number(mix.p_adjusted),
            "differing": mix.differing,
        },
        "notes": ignored,
        "verdict": comparison.verdict.value,
        "reasons": comparison.reasons,
    }


def compare_json(
    comparison: Comparison,
    *,
    source: str,
    service: str,
    ignored: list[str],
    window: dict[str, Any] | None = None,
) -> str:
    document = compare_document(
        comparison, source=source, service=service, ignored=ignored, window=window
    )
    return json.dumps(document, indent=2)


def _p(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3g}"
