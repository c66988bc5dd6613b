"""v2 (canary): content-addressed cache, single-flight, streaming synthesis.

- A stored file for the job's id is served as is (``cached: true``), with no
  backend call.
- Identical concurrent misses share one synthesis (:class:`SingleFlight` keyed
  by the content id).
- A miss uses ``StreamSynthesize`` and writes PCM to disk as the chunks arrive
  (WAV header first, sizes patched before the atomic rename).
"""

from __future__ import annotations

import asyncio

from speech_front import spans
from speech_front.singleflight import SingleFlight
from speech_front.storage import StoredAudio
from speech_front.strategy import Produced, SpeechDeps, SpeechJob


class CachedStreaming:
    def __init__(self, deps: SpeechDeps) -> None:
        self._deps = deps
        self._flights: SingleFlight[str, Produced] = SingleFlight()

    async def produce(self, job: SpeechJob) -> Produced:
        hit = await self._cached(job)
        if hit is not None:
            return hit
        produced, _joined = await self._flights.run(job.id, lambda: self._synthesize(job))
        return produced

    async def _cached(self, job: SpeechJob) -> Produced | None:
        with spans.cache_lookup(job.id) as span:
            stored = await asyncio.to_thread(self._deps.store.lookup, job.id)
            spans.record_cache_hit(span, stored is not None)
        if stored is None:
            return None
        return Produced(job, stored, cached=True)

    async def _synthesize(self, job: SpeechJob) -> Produced:
        # A flight that finished just before this one started may have stored it.
        hit = await self._cached(job)
        if hit is not None:
            return hit
        self._deps.record_backend_synthesis(job, "StreamSynthesize")
        # One span for the streamed synthesis, whose chunks are written as they come.
        with spans.synthesis(engine=job.engine, voice=job.voice, text_length=len(job.text)) as span:
            stored, job = await self._stream_to_disk(job)
            spans.record_engine(span, job.engine)
            spans.record_audio(span, duration_s=stored.duration_ms / 1000, size_bytes=stored.size)
        return Produced(job, stored, cached=False)

    async def _stream_to_disk(self, job: SpeechJob) -> tuple[StoredAudio, SpeechJob]:
        stream = await self._deps.backend.open_stream(job.text, job.voice)
        job = job.for_engine(stream.format.engine)
        store = self._deps.store
        try:
            writer = await asyncio.to_thread(store.stream_writer, job.id, stream.format.pcm)
        except BaseException:
            stream.cancel()
            raise
        try:
            async for chunk in stream.chunks():
                await asyncio.to_thread(writer.write, chunk)
            with spans.audio_write(size_bytes=writer.data_size):
                stored = await asyncio.to_thread(writer.commit)
        except BaseException:
            stream.cancel()
            raise
        finally:
            writer.abort()  # removes the temp file unless committed
        return stored, job
