"""Prefixed, readable log lines: each child's JSON log records shown as one short line."""

from __future__ import annotations

import json
from typing import Any

_SKIP = {"timestamp", "status", "logger.name", "message", "service"}
_COLOURS = ("36", "33", "35", "32", "34", "31", "96", "93")


def render(line: str) -> str:
    """``{"timestamp":..,"status":"info","message":"m","k":1}`` -> ``12:00:01.123 INFO m k=1``."""
    text = line.rstrip("\r\n")
    if not text.startswith("{"):
        return text
    try:
        record: Any = json.loads(text)
    except ValueError:
        return text
    if not isinstance(record, dict) or "message" not in record:
        return text
    stamp = str(record.get("timestamp", ""))
    clock = stamp[11:23] if len(stamp) >= 23 else stamp
    level = str(record.get("status", "")).upper()
    extras = " ".join(f"{k}={_short(v)}" for k, v in record.items() if k not in _SKIP)
    return " ".join(part for part in (clock, level, str(record["message"]), extras) if part)


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= 200 else text[:197] + "..."


class Prefixer:
    """``books        | line``, coloured per service when writing to a terminal."""

    def __init__(self, names: list[str], colour: bool) -> None:
        self.width = max((len(n) for n in names), default=5)
        self.colour = colour
        self._codes = {n: _COLOURS[i % len(_COLOURS)] for i, n in enumerate(names)}

    def prefix(self, name: str) -> str:
        label = f"{name:<{self.width}} |"
        code = self._codes.get(name)
        if self.colour and code:
            return f"\x1b[{code}m{label}\x1b[0m "
        return label + " "
