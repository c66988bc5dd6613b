"""Istio / Go-style durations ("10s", "250ms", "1m30s") as seconds.

The one duration parser: the local gateway reads Istio timeouts with it, the
static checks (repocheck) the same timeouts, and the client its duration flags
(which also take a bare number of seconds).
"""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_UNIT_SECONDS = {
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "ns": 1e-9,
}


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ValueError for anything that is not a duration."""
    value = str(text).strip()
    position = 0
    total = 0.0
    for part in _PART.finditer(value):
        if part.start() != position:
            break
        total += float(part.group(1)) * _UNIT_SECONDS[part.group(2)]
        position = part.end()
    if not value or position != len(value):
        raise ValueError(f"not a duration: {text!r} (expected e.g. 10s, 250ms, 1m30s)")
    return total
