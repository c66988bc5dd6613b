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

from servicekit.speech.singleflight import SingleFlight
from servicekit.speech.strategy import Produced, SpeechDeps, SpeechJob


class CachedStreaming:
    def __init__(self, deps: SpeechDeps) -> None:
        self._deps = deps
        self._flights: SingleFlight[str, Produced] = SingleFlight()

    async def produce(self, job: SpeechJob) -> Produced:
        hit = await self._cached(job)
        if hit is not None:
            return hit
        produced, joined = await self._flights.run(job.id, lambda: self._synthesize(job))
        if joined:
            self._deps.counters.joined_flights += 1
        return produced

    async def _cached(self, job: SpeechJob) -> Produced | None:
        stored = await asyncio.to_thread(self._deps.store.lookup, job.id)
        if stored is None:
            return None
        self._deps.counters.cache_hits += 1
        return Produced(job, stored, cached=True)

    async def _synthesize(self, job: SpeechJob) -> Produced:
        # A flight that finished just before this one started may have stored it.
        hit = await self._cached(job)
        if hit is not None:
            return hit
        self._deps.record_backend_synthesis(job, "StreamSynthesize")
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
            stored = await asyncio.to_thread(writer.commit)
        except BaseException:
            stream.cancel()
            raise
        finally:
            writer.abort()  # removes the temp file unless committed
        return Produced(job, stored, cached=False)
