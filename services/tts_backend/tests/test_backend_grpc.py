"""tts-backend (eSpeak NG) over real gRPC on loopback: audio, streaming, voices, reflection."""

from __future__ import annotations

import array
import asyncio

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from pcm_wav import read_wav
from testkit.tts_backend import TtsBackend
from tts.v1 import tts_pb2, tts_pb2_grpc

MAX_MESSAGE = 64 * 1024 * 1024

TEXTS = {
    "en-us": "Hello there. This is the first test of the speech engine! Does it work?",
    "en-gb": "Good morning. The weather in London is rather grey today; bring an umbrella.",
    "de": "Guten Tag. Das ist ein kurzer Test. Wie geht es Ihnen?",
    "fr-fr": "Bonjour tout le monde. Ceci est un essai. Merci beaucoup!",
}


def peak(pcm: bytes) -> int:
    samples = array.array("h", pcm)
    return max((abs(s) for s in samples), default=0)


def assert_valid_wav(response: tts_pb2.SynthesizeResponse) -> bytes:
    audio = read_wav(response.audio)  # checks RIFF and data sizes against the file
    assert (audio.fmt.channels, audio.fmt.bits_per_sample) == (1, 16)
    assert audio.fmt.sample_rate_hz == response.sample_rate_hertz == 22050
    assert response.audio_encoding == tts_pb2.LINEAR16
    assert response.duration_seconds == pytest.approx(audio.duration_seconds)
    assert audio.frames > 0
    assert peak(audio.pcm) > 1000, "silent audio"
    return audio.pcm


def read_stream(
    call: grpc.Call,
) -> tuple[tts_pb2.AudioFormat, bytes, tts_pb2.StreamSummary, int]:
    messages = list(call)  # type: ignore[call-overload]
    kinds = [m.WhichOneof("payload") for m in messages]
    assert kinds[0] == "format" and kinds[-1] == "summary", kinds
    assert set(kinds[1:-1]) == {"audio_chunk"}, kinds
    pcm = b"".join(m.audio_chunk for m in messages[1:-1])
    return messages[0].format, pcm, messages[-1].summary, len(messages) - 2


@pytest.mark.parametrize("voice", sorted(TEXTS))
def test_unary_gives_valid_audible_wav_per_voice(
    stub: tts_pb2_grpc.TextToSpeechStub, voice: str
) -> None:
    response = stub.Synthesize(tts_pb2.SynthesizeRequest(text=TEXTS[voice], voice=voice))
    assert_valid_wav(response)
    assert (response.engine, response.voice) == ("espeak", voice)
    # A normal reading speed: well over a second for a dozen words, under a minute.
    assert 1.0 < response.duration_seconds < 60.0


@pytest.mark.parametrize(("voice", "rate"), [("en-us", 1.0), ("de", 1.7), ("fr-fr", 0.6)])
def test_stream_concatenates_to_the_unary_pcm(
    stub: tts_pb2_grpc.TextToSpeechStub, voice: str, rate: float
) -> None:
    request = tts_pb2.SynthesizeRequest(text=TEXTS[voice], voice=voice, speaking_rate=rate)
    unary_pcm = assert_valid_wav(stub.Synthesize(request))
    fmt, pcm, summary, chunks = read_stream(stub.StreamSynthesize(request))
    assert chunks >= 3, "one chunk per sentence"
    assert pcm == unary_pcm
    assert (fmt.sample_rate_hertz, fmt.channels, fmt.bits_per_sample) == (22050, 1, 16)
    assert (fmt.engine, fmt.voice) == ("espeak", voice)
    assert summary.total_samples == len(pcm) // 2
    assert summary.duration_seconds == pytest.approx(len(pcm) / 2 / 22050)


def test_language_picks_a_voice_and_rate_changes_duration(
    stub: tts_pb2_grpc.TextToSpeechStub,
) -> None:
    by_language = stub.Synthesize(tts_pb2.SynthesizeRequest(text=TEXTS["de"], language_code="de"))
    assert by_language.voice == "de"
    slow = stub.Synthesize(tts_pb2.SynthesizeRequest(text=TEXTS["en-us"], speaking_rate=0.6))
    fast = stub.Synthesize(tts_pb2.SynthesizeRequest(text=TEXTS["en-us"], speaking_rate=2.0))
    assert_valid_wav(slow), assert_valid_wav(fast)
    assert slow.voice == fast.voice == "en-us"  # the default
    assert slow.duration_seconds > 2 * fast.duration_seconds


def test_list_voices_with_and_without_language_filter(
    stub: tts_pb2_grpc.TextToSpeechStub,
) -> None:
    everything = stub.ListVoices(tts_pb2.ListVoicesRequest()).voices
    names = {v.name for v in everything}
    assert len(everything) > 50
    assert {"en-us", "en-gb", "de", "fr-fr"} <= names
    assert all(v.engine == "espeak" and v.language_codes for v in everything)

    english = stub.ListVoices(tts_pb2.ListVoicesRequest(language_code="en")).voices
    assert {"en-us", "en-gb"} <= {v.name for v in english}
    assert all(any(c.startswith("en") for c in v.language_codes) for v in english)
    assert len(english) < len(everything)

    us = stub.ListVoices(tts_pb2.ListVoicesRequest(language_code="en-US")).voices
    assert "en-us" in {v.name for v in us} and "en-gb" not in {v.name for v in us}
    assert stub.ListVoices(tts_pb2.ListVoicesRequest(language_code="xx")).voices == []


def test_reflection_lists_the_services(channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    services = {s.name for reply in replies for s in reply.list_services_response.service}
    assert {"tts.v1.TextToSpeech", "grpc.health.v1.Health"} <= services


async def test_fifty_concurrent_requests_all_get_their_own_valid_audio(
    backend: TtsBackend,
) -> None:
    requests = [
        tts_pb2.SynthesizeRequest(text=TEXTS[voice], voice=voice, speaking_rate=rate)
        for voice in sorted(TEXTS)
        for rate in (1.0, 1.3)
    ]
    options = [("grpc.max_receive_message_length", MAX_MESSAGE)]
    async with grpc.aio.insecure_channel(backend.address, options=options) as channel:
        stub = tts_pb2_grpc.TextToSpeechStub(channel)
        reference = [await stub.Synthesize(r) for r in requests]

        async def one(i: int) -> tuple[int, bytes]:
            request = requests[i % len(requests)]
            if i % 5 == 0:  # some streams in the mix
                call = stub.StreamSynthesize(request)
                pcm = b"".join([m.audio_chunk async for m in call])
                return i, pcm
            return i, assert_valid_wav(await stub.Synthesize(request, timeout=60))

        results = await asyncio.gather(*(one(i) for i in range(50)))
    for i, pcm in results:
        expected = read_wav(reference[i % len(requests)].audio).pcm
        assert pcm == expected, f"request {i} got other or garbled audio"
