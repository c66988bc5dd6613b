"""HTTP byte ranges (RFC 9110 section 14) for serving one file."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SINGLE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
# Longer numbers are past any file: read as "infinitely far" without int()
# (which refuses more than 4300 digits and costs quadratic time below that).
_MAX_DIGITS = 18
_FAR = 10**_MAX_DIGITS


def _number(digits: str) -> int:
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= _MAX_DIGITS else _FAR


def _less(a: str, b: str) -> bool:
    """``int(a) < int(b)`` for digit strings of any length."""
    a, b = a.lstrip("0"), b.lstrip("0")
    return (len(a), a) < (len(b), b)


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class Unsatisfiable(Exception):
    """The Range names no byte of the file: answer 416."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single range asked for, or None to send the whole file.

    A missing, malformed or multi-range header is ignored (the whole file is
    sent, which RFC 9110 allows); a well-formed range outside the file raises
    :class:`Unsatisfiable`.
    """
    if not header:
        return None
    match = _SINGLE_RANGE.fullmatch(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        suffix = _number(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return ByteRange(max(0, size - suffix), size - 1)
    start = _number(first)
    if last and _less(last, first):
        return None  # invalid: ignored
    if start >= size:
        raise Unsatisfiable
    end = min(_number(last), size - 1) if last else size - 1
    return ByteRange(start, end)
