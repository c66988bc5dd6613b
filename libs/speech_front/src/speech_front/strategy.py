"""The one thing v1 and v2 do differently: how a request becomes a stored file.

The shared routes resolve the request into a :class:`SpeechJob` (text, voice,
content id) and hand it to the version's :class:`SynthesisStrategy`, which
returns the :class:`Produced` audio. A strategy is built once per process from
the shared :class:`SpeechDeps` (backend client, audio store, counters).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from speech_front.backend_client import BackendClient
from speech_front.storage import AudioStore, StoredAudio, audio_id

log = logging.getLogger("speech_front")


@dataclass(frozen=True)
class SpeechJob:
    text: str
    voice: str  # "" = the engine's default voice
    engine: str  # the engine the audio is expected from (settings.tts_engine)

    @property
    def id(self) -> str:
        return audio_id(self.engine, self.voice, self.text)

    def for_engine(self, engine: str) -> SpeechJob:
        """The same job named after the engine that actually produced the audio."""
        if not engine or engine == self.engine:
            return self
        log.warning(
            "backend engine differs from TTS_ENGINE; naming the file after the backend's",
            extra={"tts.engine.expected": self.engine, "tts.engine.actual": engine},
        )
        return SpeechJob(self.text, self.voice, engine)


@dataclass(frozen=True)
class Produced:
    job: SpeechJob
    audio: StoredAudio
    cached: bool


@dataclass
class SynthesisCounters:
    """Per-process counts, logged with every backend synthesis."""

    backend_syntheses: int = 0


@dataclass
class SpeechDeps:
    backend: BackendClient
    store: AudioStore
    counters: SynthesisCounters = field(default_factory=SynthesisCounters)

    def record_backend_synthesis(self, job: SpeechJob, rpc: str) -> None:
        """One log line per backend synthesis: what tests and dashboards count."""
        self.counters.backend_syntheses += 1
        log.info(
            "backend synthesis",
            extra={
                "speech.id": job.id,
                "tts.rpc": rpc,
                "tts.backend_syntheses": self.counters.backend_syntheses,
            },
        )


class SynthesisStrategy(Protocol):
    async def produce(self, job: SpeechJob) -> Produced:
        """Stored audio for ``job``; raises a SpeechError on failure."""
        ...


StrategyFactory = Callable[[SpeechDeps], SynthesisStrategy]
