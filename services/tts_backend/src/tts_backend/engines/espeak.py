"""The eSpeak NG engine: voices from the library, synthesis in the worker pool.

Voice names are eSpeak's primary language codes (``en-us``, ``en-gb``, ``de``,
``fr-fr``...). Output is always eSpeak's native 22050 Hz: another
``sample_rate_hertz`` is rejected with INVALID_ARGUMENT (no resampling).
Speaking rate maps linearly to words per minute (1.0 = 175 wpm); eSpeak NG
clamps below 80 wpm, so rates under about 0.46 all sound like 0.46.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass

from tts_backend.engines.base import (
    EngineError,
    Gender,
    PreparedSynthesis,
    SynthesisParams,
    VoiceInfo,
)
from tts_backend.engines.espeak_native import NativeVoice
from tts_backend.engines.espeak_pool import EngineInfo, EspeakPool, SegmentFailed, WorkerCrashed
from tts_backend.pipeline import run_ahead
from tts_backend.text_split import split_sentences

log = logging.getLogger(__name__)

NORMAL_WORDS_PER_MINUTE = 175
DEFAULT_VOICE = "en-us"


def words_per_minute(speaking_rate: float) -> int:
    return round(NORMAL_WORDS_PER_MINUTE * speaking_rate)


@dataclass(frozen=True)
class _Voice:
    info: VoiceInfo
    identifier: str
    priorities: dict[str, int]  # lower-case language code -> eSpeak priority


def _to_voice(native: NativeVoice) -> _Voice:
    codes = tuple(code.lower() for _, code in native.languages)
    gender = {1: Gender.MALE, 2: Gender.FEMALE}.get(native.gender, Gender.UNSPECIFIED)
    return _Voice(
        info=VoiceInfo(name=codes[0], language_codes=codes, gender=gender),
        identifier=native.identifier,
        priorities={code.lower(): priority for priority, code in native.languages},
    )


def language_matches(voice_code: str, wanted: str) -> bool:
    """BCP-47 prefix match, case-insensitive: "en" matches "en-us"."""
    voice_code, wanted = voice_code.lower(), wanted.lower()
    return voice_code == wanted or voice_code.startswith(wanted + "-")


class EspeakEngine:
    name = "espeak"

    def __init__(self, workers: int, segment_chars: int, pipeline_depth: int) -> None:
        self._pool = EspeakPool(workers)
        self._segment_chars = segment_chars
        self._pipeline_depth = pipeline_depth
        self._voices: dict[str, _Voice] = {}
        self.sample_rate = 0

    @property
    def pool(self) -> EspeakPool:
        return self._pool

    async def start(self) -> None:
        info: EngineInfo = await self._pool.start()
        self.sample_rate = info.sample_rate
        for native in info.voices:
            if native.languages:
                voice = _to_voice(native)
                self._voices.setdefault(voice.info.name, voice)
        log.info(
            "espeak engine loaded",
            extra={
                "workers": self._pool.size,
                "voices": len(self._voices),
                "sample_rate": self.sample_rate,
                "deterministic": info.deterministic,
            },
        )

    async def close(self) -> None:
        await self._pool.close()

    async def list_voices(self, language_code: str) -> list[VoiceInfo]:
        return [
            voice.info
            for voice in self._voices.values()
            if not language_code
            or any(language_matches(code, language_code) for code in voice.info.language_codes)
        ]

    async def prepare(self, params: SynthesisParams) -> PreparedSynthesis:
        voice = self._resolve_voice(params.voice, params.language_code)
        if params.sample_rate_hertz not in (0, self.sample_rate):
            raise EngineError(
                "INVALID_ARGUMENT",
                f"sample_rate_hertz {params.sample_rate_hertz} is not supported by espeak; "
                f"use 0 or {self.sample_rate}",
            )
        segments = tuple(split_sentences(params.text, self._segment_chars))
        if not segments:
            raise EngineError("INVALID_ARGUMENT", "text has nothing to speak")
        return PreparedSynthesis(voice.info.name, self.sample_rate, segments)

    def _resolve_voice(self, name: str, language_code: str) -> _Voice:
        if name:
            voice = self._voices.get(name.lower())
            if voice is None:
                raise EngineError("NOT_FOUND", f"voice {name!r} not found; see ListVoices")
            if language_code and not any(
                language_matches(code, language_code) or language_matches(language_code, code)
                for code in voice.info.language_codes
            ):
                raise EngineError(
                    "INVALID_ARGUMENT", f"voice {name!r} does not speak {language_code!r}"
                )
            return voice
        if not language_code:
            return self._voices[DEFAULT_VOICE]
        candidates = [
            (priority, voice.info.name, voice)
            for voice in self._voices.values()
            for code, priority in voice.priorities.items()
            if language_matches(code, language_code)
        ]
        if not candidates:
            raise EngineError("NOT_FOUND", f"no voice for language {language_code!r}")
        return min(candidates, key=lambda c: (c[0], c[1]))[2]

    def synthesize(
        self, params: SynthesisParams, prepared: PreparedSynthesis
    ) -> AsyncGenerator[bytes, None]:
        """Each segment's PCM in order, ``pipeline_depth`` segments in flight."""
        identifier = self._voices[prepared.voice].identifier
        wpm = words_per_minute(params.speaking_rate)

        def job(segment: str) -> Callable[[], Awaitable[bytes]]:
            return lambda: self._segment(segment, identifier, wpm)

        return run_ahead((job(segment) for segment in prepared.segments), self._pipeline_depth)

    async def _segment(self, text: str, identifier: str, wpm: int) -> bytes:
        try:
            return await self._pool.synthesize(text, identifier, wpm)
        except (SegmentFailed, WorkerCrashed) as error:
            raise EngineError("UNAVAILABLE", f"espeak failed: {error}") from error
