"""The tts.v1.TextToSpeech servicer: validate, run the engine, shape responses."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import grpc
from pcm_wav import PcmFormat, wav_header
from tts.v1 import tts_pb2, tts_pb2_grpc

from tts_backend.audio_limit import BYTES_PER_SAMPLE, AudioLimit
from tts_backend.engines.base import Engine, EngineError, PreparedSynthesis, SynthesisParams
from tts_backend.validation import RequestError, validate_language_code, validate_synthesize

log = logging.getLogger(__name__)

MAX_CHUNK_BYTES = 1024 * 1024


@dataclass
class _Progress:
    """What one request did; logged when it ends, however it ends."""

    method: str
    sample_rate: int = 0
    segments_total: int = 0
    segments_done: int = 0
    samples: int = 0
    started: float = field(default_factory=time.perf_counter)


class TextToSpeechServicer(tts_pb2_grpc.TextToSpeechServicer):
    def __init__(
        self, engine: Engine, max_text_chars: int, default_voice: str, audio_limit: AudioLimit
    ) -> None:
        self._engine = engine
        self._max_text_chars = max_text_chars
        self._default_voice = default_voice
        self._audio_limit = audio_limit

    async def Synthesize(
        self, request: tts_pb2.SynthesizeRequest, context: grpc.aio.ServicerContext
    ) -> tts_pb2.SynthesizeResponse:
        progress = _Progress("Synthesize")
        params, prepared = await self._prepare(request, context, progress)
        chunks: list[bytes] = []
        try:
            with self._logged(progress):
                async with contextlib.aclosing(self._engine.synthesize(params, prepared)) as pcm:
                    async for chunk in pcm:
                        self._count(progress, chunk)
                        chunks.append(chunk)
        except EngineError as error:
            await context.abort(_status(error.code), error.message)
        data_size = sum(len(chunk) for chunk in chunks)
        return tts_pb2.SynthesizeResponse(
            audio=b"".join([wav_header(PcmFormat(prepared.sample_rate_hertz), data_size), *chunks]),
            audio_encoding=tts_pb2.LINEAR16,
            sample_rate_hertz=prepared.sample_rate_hertz,
            duration_seconds=progress.samples / prepared.sample_rate_hertz,
            engine=self._engine.name,
            voice=prepared.voice,
        )

    async def StreamSynthesize(
        self, request: tts_pb2.SynthesizeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tts_pb2.StreamSynthesizeResponse]:
        progress = _Progress("StreamSynthesize")
        params, prepared = await self._prepare(request, context, progress)
        yield tts_pb2.StreamSynthesizeResponse(
            format=tts_pb2.AudioFormat(
                audio_encoding=tts_pb2.LINEAR16,
                sample_rate_hertz=prepared.sample_rate_hertz,
                channels=1,
                bits_per_sample=16,
                engine=self._engine.name,
                voice=prepared.voice,
            )
        )
        try:
            with self._logged(progress):
                async with contextlib.aclosing(self._engine.synthesize(params, prepared)) as chunks:
                    async for chunk in chunks:
                        self._count(progress, chunk)
                        for start in range(0, len(chunk), MAX_CHUNK_BYTES):
                            yield tts_pb2.StreamSynthesizeResponse(
                                audio_chunk=chunk[start : start + MAX_CHUNK_BYTES]
                            )
        except EngineError as error:
            await context.abort(_status(error.code), error.message)
        yield tts_pb2.StreamSynthesizeResponse(
            summary=tts_pb2.StreamSummary(
                duration_seconds=progress.samples / prepared.sample_rate_hertz,
                total_samples=progress.samples,
            )
        )

    def _count(self, progress: _Progress, chunk: bytes) -> None:
        """Add a segment's samples; AudioTooLong (before it is kept or sent) past the limit."""
        samples = progress.samples + len(chunk) // BYTES_PER_SAMPLE
        self._audio_limit.check(samples, progress.sample_rate)
        progress.segments_done += 1
        progress.samples = samples

    async def ListVoices(
        self, request: tts_pb2.ListVoicesRequest, context: grpc.aio.ServicerContext
    ) -> tts_pb2.ListVoicesResponse:
        try:
            language = validate_language_code(request.language_code)
            voices = await self._engine.list_voices(language)
        except (RequestError, EngineError) as error:
            await context.abort(_status(error.code), error.message)
        return tts_pb2.ListVoicesResponse(
            voices=[
                tts_pb2.Voice(
                    name=voice.name,
                    language_codes=list(voice.language_codes),
                    gender=tts_pb2.Gender.ValueType(int(voice.gender)),
                    engine=self._engine.name,
                )
                for voice in voices
            ]
        )

    async def _prepare(
        self,
        request: tts_pb2.SynthesizeRequest,
        context: grpc.aio.ServicerContext,
        progress: _Progress,
    ) -> tuple[SynthesisParams, PreparedSynthesis]:
        try:
            params = validate_synthesize(request, self._max_text_chars, self._default_voice)
            prepared = await self._engine.prepare(params)
            progress.segments_total = len(prepared.segments)
            progress.sample_rate = prepared.sample_rate_hertz
            return params, prepared
        except (RequestError, EngineError) as error:
            log.info(
                "request rejected",
                extra={
                    "rpc.method": progress.method,
                    "grpc.code": error.code,
                    "error.message": error.message,
                },
            )
            await context.abort(_status(error.code), error.message)
            raise  # unreachable: abort raises

    @staticmethod
    @contextlib.contextmanager
    def _logged(progress: _Progress) -> Iterator[None]:
        """Log how the synthesis ended: ok, error or cancelled, and how far it got."""
        outcome = "ok"
        try:
            yield
        except EngineError:
            outcome = "error"
            raise
        except BaseException:
            outcome = "cancelled"
            raise
        finally:
            log.info(
                "synthesis " + outcome,
                extra={
                    "rpc.method": progress.method,
                    "segments_done": progress.segments_done,
                    "segments_total": progress.segments_total,
                    "audio_seconds": round(progress.samples / max(progress.sample_rate, 1), 3),
                    "duration_ms": round((time.perf_counter() - progress.started) * 1000, 1),
                },
            )


def _status(code: str) -> grpc.StatusCode:
    status: grpc.StatusCode = getattr(grpc.StatusCode, code, grpc.StatusCode.UNKNOWN)
    return status
