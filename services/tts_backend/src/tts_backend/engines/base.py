"""The small interface every speech engine implements."""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol


class Gender(enum.IntEnum):
    """Same numbering as ``tts.v1.Gender``."""

    UNSPECIFIED = 0
    MALE = 1
    FEMALE = 2
    NEUTRAL = 3


@dataclass(frozen=True)
class VoiceInfo:
    name: str
    language_codes: tuple[str, ...]
    gender: Gender


@dataclass(frozen=True)
class SynthesisParams:
    """A validated request, in engine terms."""

    text: str
    voice: str  # empty = engine picks for language_code
    language_code: str  # empty = the voice's own
    speaking_rate: float  # 0.25..4.0, 1.0 = normal
    sample_rate_hertz: int  # 0 = engine's native rate


@dataclass(frozen=True)
class PreparedSynthesis:
    """What the engine will produce, known before the first sample."""

    voice: str
    sample_rate_hertz: int
    segments: tuple[str, ...]


class EngineError(Exception):
    """A request the engine cannot serve; ``code`` is a grpc.StatusCode name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Engine(Protocol):
    """A speech engine: voices, then PCM (16-bit LE mono) segment by segment."""

    name: str

    async def start(self) -> None:
        """Load whatever the engine needs; the server is SERVING only after this."""

    async def close(self) -> None:
        """Release processes and connections."""

    async def list_voices(self, language_code: str) -> list[VoiceInfo]:
        """Voices, filtered by BCP-47 language (empty = all)."""

    async def prepare(self, params: SynthesisParams) -> PreparedSynthesis:
        """Resolve voice and format, split the text; raise EngineError on bad input."""

    def synthesize(
        self, params: SynthesisParams, prepared: PreparedSynthesis
    ) -> AsyncGenerator[bytes, None]:
        """PCM of each segment in order, each yielded as soon as it is ready."""
