"""TTS_ENGINE=google against a local fake of Google's TextToSpeech gRPC service.

The fake is a grpc.aio server on loopback speaking Google's own message types
(``google.cloud.texttospeech_v1``), run on its own event loop in a thread so
the test can use blocking clients. No network beyond loopback.
"""

from __future__ import annotations

import array
import asyncio
import math
import threading
import time
import warnings
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pcm_wav import PcmFormat, read_wav, wav_header
from testkit.process import free_port
from testkit.tts_backend import TtsBackend, running_tts_backend
from tts.v1 import tts_pb2, tts_pb2_grpc

with warnings.catch_warnings():  # google.api_core warns about Python 3.11's end of life
    warnings.simplefilter("ignore", FutureWarning)
    from google.cloud import texttospeech_v1 as gtts

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

SERVICE = "google.cloud.texttospeech.v1.TextToSpeech"
BAD_VOICE = "en-US-Nonexistent-Z"


def tone(text: str, sample_rate: int) -> bytes:
    """Deterministic fake speech: a 440 Hz tone, 20 ms per character."""
    frames = len(text) * sample_rate // 50
    step = 2 * math.pi * 440 / sample_rate
    return array.array("h", (int(8000 * math.sin(i * step)) for i in range(frames))).tobytes()


class FakeGoogle:
    """Google's TextToSpeech on 127.0.0.1:port; records every request it gets."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.requests: list[gtts.SynthesizeSpeechRequest] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: grpc.aio.Server | None = None

    async def _synthesize(
        self, request: gtts.SynthesizeSpeechRequest, context: grpc.aio.ServicerContext
    ) -> gtts.SynthesizeSpeechResponse:
        self.requests.append(request)
        if request.voice.name == BAD_VOICE:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Voice does not exist.")
        if "overloaded" in request.input.text:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "The service is unavailable.")
        rate = request.audio_config.sample_rate_hertz
        pcm = tone(request.input.text, rate)
        return gtts.SynthesizeSpeechResponse(
            audio_content=wav_header(PcmFormat(rate), len(pcm)) + pcm
        )

    async def _list_voices(
        self, request: gtts.ListVoicesRequest, context: grpc.aio.ServicerContext
    ) -> gtts.ListVoicesResponse:
        voices = [
            gtts.Voice(name="en-US-Standard-A", language_codes=["en-US"], ssml_gender=1),
            gtts.Voice(name="en-US-Standard-C", language_codes=["en-US"], ssml_gender=2),
            gtts.Voice(name="de-DE-Standard-A", language_codes=["de-DE"], ssml_gender=2),
        ]
        wanted = request.language_code.lower()
        return gtts.ListVoicesResponse(
            voices=[v for v in voices if not wanted or v.language_codes[0].lower() == wanted]
        )

    async def _start(self) -> None:
        handlers = {
            "SynthesizeSpeech": grpc.unary_unary_rpc_method_handler(
                self._synthesize,
                request_deserializer=gtts.SynthesizeSpeechRequest.deserialize,
                response_serializer=gtts.SynthesizeSpeechResponse.serialize,
            ),
            "ListVoices": grpc.unary_unary_rpc_method_handler(
                self._list_voices,
                request_deserializer=gtts.ListVoicesRequest.deserialize,
                response_serializer=gtts.ListVoicesResponse.serialize,
            ),
        }
        self._server = grpc.aio.server()
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),)
        )
        self._server.add_insecure_port(f"127.0.0.1:{self.port}")
        await self._server.start()

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    def stop(self) -> None:
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.stop(0), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


def health_status(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def google_backend() -> Iterator[tuple[TtsBackend, FakeGoogle]]:
    """A backend started while Google is unreachable; then the fake comes up."""
    fake = FakeGoogle(free_port())
    env = {
        "TTS_ENGINE": "google",
        "GOOGLE_TTS_ENDPOINT": f"127.0.0.1:{fake.port}",
        "GOOGLE_TTS_INSECURE": "true",
        "GOOGLE_TTS_TIMEOUT_S": "10",
    }
    with running_tts_backend(env, wait_ready=False) as backend:
        try:
            yield backend, fake
        finally:
            fake.stop()


@pytest.fixture(scope="module")
def stub(google_backend: tuple[TtsBackend, FakeGoogle]) -> Iterator[tts_pb2_grpc.TextToSpeechStub]:
    backend, fake = google_backend
    # Google unreachable: the server answers health checks but is not SERVING.
    deadline = time.monotonic() + 20
    while not backend.log_lines("google not reachable yet"):
        assert backend.process.is_running(), backend.process.output()
        assert time.monotonic() < deadline, "backend never tried to reach Google"
        time.sleep(0.05)
    assert health_status(backend.address) == health_pb2.HealthCheckResponse.NOT_SERVING
    fake.start()
    backend.process.wait_grpc_ready(backend.address)
    with grpc.insecure_channel(backend.address) as channel:
        yield tts_pb2_grpc.TextToSpeechStub(channel)


TEXT = "Hello from the fake. It speaks in tones! Three sentences?"


def test_unary_and_stream_through_google(
    google_backend: tuple[TtsBackend, FakeGoogle], stub: tts_pb2_grpc.TextToSpeechStub
) -> None:
    _, fake = google_backend
    request = tts_pb2.SynthesizeRequest(
        text=TEXT, voice="en-US-Standard-C", speaking_rate=1.25, sample_rate_hertz=16000
    )
    response = stub.Synthesize(request)
    audio = read_wav(response.audio)
    assert audio.fmt == PcmFormat(16000, 1, 16)
    assert (response.engine, response.voice) == ("google", "en-US-Standard-C")
    sentences = ["Hello from the fake.", "It speaks in tones!", "Three sentences?"]
    assert audio.pcm == b"".join(tone(s, 16000) for s in sentences)
    assert response.duration_seconds == pytest.approx(audio.frames / 16000)

    sent = fake.requests[-1]
    assert sent.voice.name == "en-US-Standard-C" and sent.voice.language_code == "en-US"
    assert sent.audio_config.audio_encoding == gtts.AudioEncoding.LINEAR16
    assert sent.audio_config.speaking_rate == pytest.approx(1.25)

    messages = list(stub.StreamSynthesize(request))
    assert messages[0].format.sample_rate_hertz == 16000
    assert messages[0].format.engine == "google"
    assert b"".join(m.audio_chunk for m in messages[1:-1]) == audio.pcm
    assert messages[-1].summary.total_samples == audio.frames


def test_default_sample_rate_is_24000(stub: tts_pb2_grpc.TextToSpeechStub) -> None:
    response = stub.Synthesize(tts_pb2.SynthesizeRequest(text="Hi.", language_code="de-DE"))
    assert read_wav(response.audio).fmt.sample_rate_hz == response.sample_rate_hertz == 24000


def test_google_invalid_argument_is_passed_on(stub: tts_pb2_grpc.TextToSpeechStub) -> None:
    with pytest.raises(grpc.RpcError) as error:
        stub.Synthesize(tts_pb2.SynthesizeRequest(text=TEXT, voice=BAD_VOICE))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Voice does not exist" in error.value.details()


def test_google_unavailable_is_passed_on(stub: tts_pb2_grpc.TextToSpeechStub) -> None:
    request = tts_pb2.SynthesizeRequest(text="The line is overloaded today.")
    with pytest.raises(grpc.RpcError) as unary:
        stub.Synthesize(request)
    with pytest.raises(grpc.RpcError) as stream:
        list(stub.StreamSynthesize(request))
    for error in (unary.value, stream.value):
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert "unavailable" in error.details()


def test_input_over_5000_bytes_is_refused_before_calling_google(
    google_backend: tuple[TtsBackend, FakeGoogle], stub: tts_pb2_grpc.TextToSpeechStub
) -> None:
    _, fake = google_backend
    calls = len(fake.requests)
    with pytest.raises(grpc.RpcError) as error:
        stub.Synthesize(tts_pb2.SynthesizeRequest(text="é" * 3000))  # 3000 chars, 6000 bytes
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "5000" in error.value.details()
    assert len(fake.requests) == calls


def test_list_voices_from_google(stub: tts_pb2_grpc.TextToSpeechStub) -> None:
    voices = stub.ListVoices(tts_pb2.ListVoicesRequest(language_code="en-US")).voices
    assert [(v.name, v.gender, v.engine) for v in voices] == [
        ("en-US-Standard-A", tts_pb2.MALE, "google"),
        ("en-US-Standard-C", tts_pb2.FEMALE, "google"),
    ]
