"""v1 (stable): unary ``Synthesize`` on every request; the file is replaced each time."""

from __future__ import annotations

import asyncio

from servicekit.speech.strategy import Produced, SpeechDeps, SpeechJob


class SynthesizeEveryTime:
    def __init__(self, deps: SpeechDeps) -> None:
        self._deps = deps

    async def produce(self, job: SpeechJob) -> Produced:
        self._deps.record_backend_synthesis(job, "Synthesize")
        synthesis = await self._deps.backend.synthesize(job.text, job.voice)
        job = job.for_engine(synthesis.engine)
        stored = await asyncio.to_thread(self._deps.store.write_wav, job.id, synthesis.wav)
        return Produced(job, stored, cached=False)
