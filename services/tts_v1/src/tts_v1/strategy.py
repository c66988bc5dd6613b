"""v1 (stable): unary ``Synthesize`` on every request; the file is replaced each time."""

from __future__ import annotations

import asyncio

from speech_front import spans
from speech_front.strategy import Produced, SpeechDeps, SpeechJob


class SynthesizeEveryTime:
    def __init__(self, deps: SpeechDeps) -> None:
        self._deps = deps

    async def produce(self, job: SpeechJob) -> Produced:
        self._deps.record_backend_synthesis(job, "Synthesize")
        with spans.synthesis(engine=job.engine, voice=job.voice, text_length=len(job.text)) as span:
            synthesis = await self._deps.backend.synthesize(job.text, job.voice)
            spans.record_engine(span, synthesis.engine)
        job = job.for_engine(synthesis.engine)
        with spans.audio_write(size_bytes=len(synthesis.wav)) as span:
            stored = await asyncio.to_thread(self._deps.store.write_wav, job.id, synthesis.wav)
            spans.record_audio(span, duration_s=stored.duration_ms / 1000, size_bytes=stored.size)
        return Produced(job, stored, cached=False)
