"""The TTS backend as the fronts see it: one gRPC channel, a deadline per call.

gRPC failures become HTTP-facing errors: INVALID_ARGUMENT / NOT_FOUND (bad
text or voice) -> :class:`BackendRejected` (422) with the backend's message;
OUT_OF_RANGE (the audio would pass the backend's limit) or a reply over this
client's receive limit -> :class:`AudioTooLong` (422): permanent, never worth a
retry; anything else (unreachable, deadline exceeded, overloaded, internal) ->
:class:`BackendUnavailable` (503 with Retry-After).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pcm_wav import PcmFormat, parse_wav
from tts.v1 import tts_pb2, tts_pb2_grpc

from speech_front.errors import (
    AudioTooLong,
    BackendRejected,
    BackendUnavailable,
    SpeechError,
)

log = logging.getLogger("speech_front.backend")

_REJECTED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
# The backend keeps a unary reply under its send limit (TTS_MAX_SEND_BYTES, default
# 64 MiB, by shortening its TTS_MAX_AUDIO_S where needed); this must not be lower.
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
    # Reconnect quickly once a restarted backend is back (default backoff grows to 2 min).
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.enable_retries", 0),
]


@dataclass(frozen=True)
class Synthesis:
    """A complete unary result."""

    wav: bytes
    engine: str
    voice: str


@dataclass(frozen=True)
class StreamFormat:
    pcm: PcmFormat
    engine: str
    voice: str


class SynthesisStream:
    """A StreamSynthesize call whose format message has been read."""

    def __init__(
        self,
        call: grpc.aio.UnaryStreamCall[Any, Any],
        fmt: StreamFormat,
        client: BackendClient,
    ) -> None:
        self._call = call
        self.format = fmt
        self._client = client

    async def chunks(self) -> AsyncIterator[bytes]:
        """PCM chunks as the backend sends them; ends at the summary message."""
        try:
            while True:
                message = await self._call.read()
                if message is grpc.aio.EOF:
                    raise BackendUnavailable("backend stream ended without a summary")
                payload = message.WhichOneof("payload")
                if payload == "audio_chunk":
                    yield message.audio_chunk
                elif payload == "summary":
                    return
        except grpc.aio.AioRpcError as exc:
            raise self._client.error_for(exc) from exc

    def cancel(self) -> None:
        self._call.cancel()


class BackendClient:
    def __init__(self, address: str, timeout_s: float) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self._channel = grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)
        self._stub = tts_pb2_grpc.TextToSpeechStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    @staticmethod
    def _request(text: str, voice: str) -> tts_pb2.SynthesizeRequest:
        return tts_pb2.SynthesizeRequest(text=text, voice=voice, audio_encoding=tts_pb2.LINEAR16)

    async def synthesize(self, text: str, voice: str) -> Synthesis:
        """Unary Synthesize: the whole WAV file in one reply."""
        try:
            reply = await self._stub.Synthesize(self._request(text, voice), timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise self.error_for(exc) from exc
        if parse_wav(reply.audio) is None:
            raise BackendUnavailable("backend sent audio that is not a WAV file")
        return Synthesis(wav=reply.audio, engine=reply.engine, voice=reply.voice)

    async def open_stream(self, text: str, voice: str) -> SynthesisStream:
        """Start StreamSynthesize and read its first (format) message."""
        call = self._stub.StreamSynthesize(self._request(text, voice), timeout=self.timeout_s)
        try:
            first = await call.read()
        except grpc.aio.AioRpcError as exc:
            raise self.error_for(exc) from exc
        if first is grpc.aio.EOF or first.WhichOneof("payload") != "format":
            call.cancel()
            raise BackendUnavailable("backend stream did not start with the audio format")
        fmt = first.format
        if fmt.audio_encoding not in (tts_pb2.AUDIO_ENCODING_UNSPECIFIED, tts_pb2.LINEAR16):
            call.cancel()
            raise BackendUnavailable("backend stream is not LINEAR16")
        pcm = PcmFormat(
            sample_rate_hz=fmt.sample_rate_hertz,
            channels=fmt.channels or 1,
            bits_per_sample=fmt.bits_per_sample or 16,
        )
        return SynthesisStream(call, StreamFormat(pcm, fmt.engine, fmt.voice), self)

    async def is_serving(self, timeout_s: float) -> bool:
        """True if the backend's standard gRPC health check says SERVING."""
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def error_for(self, exc: grpc.aio.AioRpcError) -> SpeechError:
        code = exc.code()
        details = exc.details() or code.name
        if code in _REJECTED:
            return BackendRejected(details)
        if code == grpc.StatusCode.OUT_OF_RANGE:
            return AudioTooLong(details)
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details:
            # gRPC's own message-size check (ours on receive, or the backend's on send).
            return AudioTooLong(f"the audio is too large to transfer: {details}")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            message = f"backend did not answer within {self.timeout_s}s"
        elif code == grpc.StatusCode.UNAVAILABLE:
            message = f"backend unreachable at {self.address}"
        else:
            message = f"backend failed ({code.name}: {details})"
        return BackendUnavailable(message)

    async def close(self) -> None:
        await self._channel.close()
