"""Split text into segments at sentence boundaries, each at most ``max_chars`` long.

Streaming sends each segment's audio as soon as it is synthesized, so the first
segment bounds the time to first audio. A sentence ends at ``.``, ``!``, ``?``
or ``…`` (plus closing quotes/brackets) followed by whitespace and a character
that is not a lower-case letter (so "e.g. this" stays whole), or at a line
break. A sentence longer than ``max_chars`` is cut at its last clause mark
(``,;:``) or space before the limit, and as a last resort mid-word.
"""

from __future__ import annotations

import re

_CLOSERS = "\"')]\u201d\u2019"  # quotes and brackets that may follow the full stop
_SENTENCE_END = re.compile(r"(?<=[.!?\u2026])[" + re.escape(_CLOSERS) + r"]*\s+(?=[^a-z])|\n\s*")
_CLAUSE_MARKS = ",;:"


def split_sentences(text: str, max_chars: int = 400) -> list[str]:
    """Non-empty, stripped segments whose concatenation covers the text's words."""
    segments: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        segments.extend(_bounded(text[start : match.end()], max_chars))
        start = match.end()
    segments.extend(_bounded(text[start:], max_chars))
    return segments


def _bounded(sentence: str, max_chars: int) -> list[str]:
    pieces: list[str] = []
    rest = sentence.strip()
    while len(rest) > max_chars:
        window = rest[:max_chars]
        cut = max(window.rfind(mark) for mark in _CLAUSE_MARKS) + 1
        if cut <= max_chars // 4:
            cut = window.rfind(" ")
        if cut <= 0:
            cut = max_chars
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        pieces.append(rest)
    return [piece for piece in pieces if piece]
