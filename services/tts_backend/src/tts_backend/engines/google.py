"""Google Cloud Text-to-Speech engine (``TTS_ENGINE=google``).

Uses the async client with Application Default Credentials. Google's limits
are checked before any call: at most 5000 bytes of input text, speaking rate
0.25..4.0. The text is split at sentence boundaries like eSpeak's so streaming
starts after the first sentence; each segment is one SynthesizeSpeech call
returning LINEAR16 in a WAV container, whose PCM is extracted. Without a
requested sample rate Google is asked for 24000 Hz, so the format is known
before the first call. Google's errors map to the matching gRPC status.

``GOOGLE_TTS_ENDPOINT`` points the client elsewhere; with
``GOOGLE_TTS_INSECURE=true`` it talks plaintext with no credentials, which is
only for a local fake server in tests.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TypeVar

from pcm_wav import PcmFormat, WavError, read_wav
from tts_backend.engines.base import (
    EngineError,
    Gender,
    PreparedSynthesis,
    SynthesisParams,
    VoiceInfo,
)
from tts_backend.pipeline import run_ahead
from tts_backend.text_split import split_sentences

warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.api_core\..*")

import grpc  # noqa: E402
from google.api_core import client_options as client_options_lib  # noqa: E402
from google.api_core import exceptions as google_errors  # noqa: E402
from google.auth.exceptions import DefaultCredentialsError  # noqa: E402
from google.cloud import texttospeech_v1 as gtts  # noqa: E402
from google.cloud.texttospeech_v1.services.text_to_speech.transports import (  # noqa: E402
    TextToSpeechGrpcAsyncIOTransport,
)

log = logging.getLogger(__name__)

MAX_INPUT_BYTES = 5000
DEFAULT_SAMPLE_RATE = 24000
DEFAULT_LANGUAGE = "en-US"

T = TypeVar("T")

# Most specific first: subclasses before their bases.
_ERROR_CODES: tuple[tuple[type[google_errors.GoogleAPICallError], str], ...] = (
    (google_errors.InvalidArgument, "INVALID_ARGUMENT"),
    (google_errors.NotFound, "NOT_FOUND"),
    (google_errors.PermissionDenied, "PERMISSION_DENIED"),
    (google_errors.Unauthenticated, "PERMISSION_DENIED"),
    (google_errors.ResourceExhausted, "RESOURCE_EXHAUSTED"),
    (google_errors.DeadlineExceeded, "DEADLINE_EXCEEDED"),
    (google_errors.ServiceUnavailable, "UNAVAILABLE"),
    (google_errors.FailedPrecondition, "FAILED_PRECONDITION"),
    (google_errors.Cancelled, "CANCELLED"),
)


def map_google_error(error: google_errors.GoogleAPICallError) -> EngineError:
    for kind, code in _ERROR_CODES:
        if isinstance(error, kind):
            return EngineError(code, f"google: {error.message}")
    return EngineError("UNAVAILABLE", f"google: {error.message}")


def language_of_voice(voice: str) -> str:
    """Google voice names start with their language: "en-US-Wavenet-D" -> "en-US"."""
    parts = voice.split("-")
    return "-".join(parts[:2]) if len(parts) >= 3 else ""


class GoogleEngine:
    name = "google"

    def __init__(
        self,
        endpoint: str | None,
        insecure: bool,
        timeout_s: float,
        segment_chars: int,
        pipeline_depth: int,
    ) -> None:
        self._endpoint = endpoint
        self._insecure = insecure
        self._timeout_s = timeout_s
        self._segment_chars = segment_chars
        self._pipeline_depth = pipeline_depth
        self._client: gtts.TextToSpeechAsyncClient | None = None
        self._channel: grpc.aio.Channel | None = None

    async def start(self) -> None:
        """Create the client; fails here (not on first request) without credentials."""
        if self._insecure and self._endpoint:
            self._channel = grpc.aio.insecure_channel(self._endpoint)
            transport = TextToSpeechGrpcAsyncIOTransport(channel=self._channel)
            self._client = gtts.TextToSpeechAsyncClient(transport=transport)
        else:
            options = client_options_lib.ClientOptions(api_endpoint=self._endpoint)
            try:
                self._client = gtts.TextToSpeechAsyncClient(client_options=options)
            except DefaultCredentialsError as error:
                raise RuntimeError(f"google engine needs credentials: {error}") from error
        await self._wait_reachable()
        log.info("google engine ready", extra={"endpoint": self._endpoint or "default"})

    async def _wait_reachable(self) -> None:
        """One ListVoices call must succeed before the server reports SERVING."""
        delay = 0.2
        while True:
            try:
                await self.list_voices(DEFAULT_LANGUAGE)
                return
            except EngineError as error:
                log.warning(
                    "google not reachable yet",
                    extra={"grpc.code": error.code, "error.message": error.message},
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
        elif self._client is not None:
            await self._client.transport.close()  # type: ignore[no-untyped-call]

    @property
    def client(self) -> gtts.TextToSpeechAsyncClient:
        if self._client is None:
            raise EngineError("UNAVAILABLE", "google engine not started")
        return self._client

    async def list_voices(self, language_code: str) -> list[VoiceInfo]:
        response = await self._call(
            lambda: self.client.list_voices(
                language_code=language_code, retry=None, timeout=self._timeout_s
            )
        )
        return [
            VoiceInfo(
                name=voice.name,
                language_codes=tuple(voice.language_codes),
                gender=Gender(int(voice.ssml_gender))
                if int(voice.ssml_gender) in Gender._value2member_map_
                else Gender.UNSPECIFIED,
            )
            for voice in response.voices
        ]

    async def prepare(self, params: SynthesisParams) -> PreparedSynthesis:
        size = len(params.text.encode())
        if size > MAX_INPUT_BYTES:
            raise EngineError(
                "INVALID_ARGUMENT",
                f"text is {size} bytes of UTF-8; Google accepts at most {MAX_INPUT_BYTES}",
            )
        segments = tuple(split_sentences(params.text, self._segment_chars))
        if not segments:
            raise EngineError("INVALID_ARGUMENT", "text has nothing to speak")
        rate = params.sample_rate_hertz or DEFAULT_SAMPLE_RATE
        return PreparedSynthesis(params.voice, rate, segments)

    def synthesize(
        self, params: SynthesisParams, prepared: PreparedSynthesis
    ) -> AsyncGenerator[bytes, None]:
        language = params.language_code or language_of_voice(params.voice) or DEFAULT_LANGUAGE
        voice = gtts.VoiceSelectionParams(language_code=language, name=params.voice)
        config = gtts.AudioConfig(
            audio_encoding=gtts.AudioEncoding.LINEAR16,
            speaking_rate=params.speaking_rate,
            sample_rate_hertz=prepared.sample_rate_hertz,
        )

        def job(segment: str) -> Callable[[], Awaitable[bytes]]:
            return lambda: self._segment(segment, voice, config, prepared)

        return run_ahead((job(segment) for segment in prepared.segments), self._pipeline_depth)

    async def _segment(
        self,
        text: str,
        voice: gtts.VoiceSelectionParams,
        config: gtts.AudioConfig,
        prepared: PreparedSynthesis,
    ) -> bytes:
        response = await self._call(
            lambda: self.client.synthesize_speech(
                input=gtts.SynthesisInput(text=text),
                voice=voice,
                audio_config=config,
                retry=None,
                timeout=self._timeout_s,
            )
        )
        try:
            audio = read_wav(response.audio_content)
        except WavError as error:
            raise EngineError("UNAVAILABLE", f"google returned bad audio: {error}") from error
        fmt = audio.fmt
        if fmt != PcmFormat(prepared.sample_rate_hertz):  # mono, 16 bits
            raise EngineError(
                "UNAVAILABLE",
                f"google returned {fmt.sample_rate_hz} Hz, {fmt.channels} channel(s), "
                f"{fmt.bits_per_sample} bits; expected {prepared.sample_rate_hertz} Hz mono 16",
            )
        return audio.pcm

    @staticmethod
    async def _call(call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except google_errors.GoogleAPICallError as error:
            raise map_google_error(error) from error
