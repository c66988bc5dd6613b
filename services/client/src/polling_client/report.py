"""Renders results for people (aligned tables) and for programs (JSON)."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from polling_client.tally import PollSummary
from polling_client.thresholds import Thresholds

if TYPE_CHECKING:
    from polling_client.verdict import Comparison, VersionStats


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _number(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else round(value, 6)


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
        str(stats.errors),
        f"{stats.error_rate:.1%}",
        *[_ms(pct[q]) for q in (50.0, 95.0, 99.0)],
    ]


def compare_table(comparison: Comparison, *, source: str, service: str, ignored: list[str]) -> str:
    b, c = comparison.baseline, comparison.canary
    header = [
        "resource",
        "version",
        "requests",
        "errors",
        "error %",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "latency p",
        "errors p",
        "result",
    ]
    rows: list[list[str]] = []
    for item in comparison.resources:
        tests = item.tests
        rows.append([item.resource, *_version_cells(item.baseline), "", "", ""])
        rows.append(
            [
                "",
                *_version_cells(item.canary),
                _p(tests.latency_p_adjusted),
                _p(tests.error_p_adjusted),
                item.status.value,
            ]
        )
    lines = [
        f"{service} entry spans from {source}: {b} (baseline) vs {c} (canary), per resource",
        "",
        *_table(header, rows),
        "",
    ]
    for one in comparison.only_in:
        lines.append(
            f"only in {one.version}: {one.resource} ({one.requests} requests, not compared)"
        )
    lines.append(
        f"tests per resource, one-sided ({c} worse): latency Mann-Whitney U, errors Fisher"
        f" exact; p-values adjusted with {comparison.correction} over"
        f" {comparison.family_size} tests (family-wise error <= alpha)"
    )
    lines.append(f"thresholds: {comparison.thresholds.describe()}")
    lines.extend(f"note: {text}" for text in ignored)
    lines.append("")
    lines.append(f"verdict: {comparison.verdict.value.upper()} - {'; '.join(comparison.reasons)}")
    return "\n".join(lines)


def compare_json(comparison: Comparison, *, source: str, service: str, ignored: list[str]) -> str:
    def version(stats: VersionStats) -> dict[str, Any]:
        pct = stats.latency_percentiles()
        return {
            "version": stats.version,
            "requests": stats.requests,
            "errors": stats.errors,
            "error_rate": round(stats.error_rate, 6),
            "p50_ms": _number(pct[50.0]),
            "p95_ms": _number(pct[95.0]),
            "p99_ms": _number(pct[99.0]),
        }

    thresholds: Thresholds = comparison.thresholds
    document = {
        "source": source,
        "service": service,
        "baseline": comparison.baseline,
        "canary": comparison.canary,
        "correction": {
            "method": "holm",
            "name": comparison.correction,
            "family_size": comparison.family_size,
            "controls": "family-wise error rate",
        },
        "thresholds": {
            "alpha": thresholds.alpha,
            "latency_margin": thresholds.latency_margin,
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
                    "alternative": "canary slower",
                    "u": _number(item.tests.latency_u),
                    "p_value": _number(item.tests.latency_p),
                    "p_adjusted": _number(item.tests.latency_p_adjusted),
                    "median_ratio": _number(item.tests.median_ratio),
                },
                "error_test": {
                    "name": "fisher-exact",
                    "alternative": "canary errs more",
                    "p_value": _number(item.tests.error_p),
                    "p_adjusted": _number(item.tests.error_p_adjusted),
                    "error_rate_diff": _number(item.tests.error_rate_diff),
                },
                "status": item.status.value,
                "reasons": item.reasons,
            }
            for item in comparison.resources
        ],
        "only_in": [
            {"resource": one.resource, "version": one.version, "requests": one.requests}
            for one in comparison.only_in
        ],
        "notes": ignored,
        "verdict": comparison.verdict.value,
        "reasons": comparison.reasons,
    }
    return json.dumps(document, indent=2)


def _p(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3g}"
