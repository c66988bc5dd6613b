"""What a polling user does, and in which proportions.

A workload is a mix of operations with integer weights, e.g.
``root=6,create_book=1,list_books=1,speech=1,audio=1``. :class:`MixSchedule`
interleaves them deterministically with smooth weighted round-robin (the
algorithm nginx uses for upstream weights), so every window of ``sum(weights)``
requests has exactly the mix, with no random bursts of one kind.
"""

from __future__ import annotations

from enum import StrEnum


class Operation(StrEnum):
    ROOT = "root"  # GET /
    CREATE_BOOK = "create_book"  # POST /books
    LIST_BOOKS = "list_books"  # GET /books
    SPEECH = "speech"  # POST /speech
    AUDIO = "audio"  # GET <audio_url> of an earlier speech


# Operations answered by the text-to-speech fronts (they carry x-tts-version).
TTS_OPERATIONS = frozenset({Operation.ROOT, Operation.SPEECH, Operation.AUDIO})

DEFAULT_MIX = "root=6,create_book=1,list_books=1,speech=1,audio=1"

_MAX_WEIGHT = 1000


def parse_mix(text: str) -> dict[Operation, int]:
    """Parse ``name=weight,...``; raise ValueError with a readable reason."""
    weights: dict[Operation, int] = {}
    for item in text.split(","):
        name, sep, weight = item.strip().partition("=")
        if not sep:
            raise ValueError(f"{item.strip()!r} is not name=weight")
        try:
            operation = Operation(name.strip())
        except ValueError:
            known = ", ".join(op.value for op in Operation)
            raise ValueError(f"unknown operation {name.strip()!r} (known: {known})") from None
        if not weight.strip().isdigit() or int(weight) > _MAX_WEIGHT:
            raise ValueError(f"weight of {operation.value} must be an integer 0-{_MAX_WEIGHT}")
        if operation in weights:
            raise ValueError(f"{operation.value} given twice")
        weights[operation] = int(weight)
    if not any(weights.values()):
        raise ValueError("at least one operation needs a weight above 0")
    return {op: w for op, w in weights.items() if w > 0}


class MixSchedule:
    """Yields operations in the proportions of their weights, evenly spread."""

    def __init__(self, weights: dict[Operation, int]) -> None:
        if not weights or any(w <= 0 for w in weights.values()):
            raise ValueError("weights must be positive")
        self._weights = dict(weights)
        self._total = sum(weights.values())
        self._current = dict.fromkeys(weights, 0)

    def next(self) -> Operation:
        for operation, weight in self._weights.items():
            self._current[operation] += weight
        chosen = max(self._current, key=lambda op: self._current[op])
        self._current[chosen] -= self._total
        return chosen
