"""The audio one request may produce is bounded, the same way for unary and streaming."""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import pytest
from testkit.tts_backend import TtsBackend, running_tts_backend
from tts.v1 import tts_pb2, tts_pb2_grpc
from tts_backend.audio_limit import REPLY_OVERHEAD_BYTES, AudioLimit

LIMIT_S = 3
RATE_HZ = 22050
SHORT = "Hello there."  # about one second
LONG = " ".join(f"Sentence number {i} is a little longer." for i in range(20))  # ~40 s
MAX_MESSAGE = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def limited() -> Iterator[TtsBackend]:
    with running_tts_backend({"TTS_WORKERS": "1", "TTS_MAX_AUDIO_S": str(LIMIT_S)}) as server:
        yield server


@pytest.fixture(scope="module")
def limited_stub(limited: TtsBackend) -> Iterator[tts_pb2_grpc.TextToSpeechStub]:
    with grpc.insecure_channel(limited.address) as channel:
        yield tts_pb2_grpc.TextToSpeechStub(channel)


def test_audio_within_the_limit_is_served_by_both_calls(
    limited_stub: tts_pb2_grpc.TextToSpeechStub,
) -> None:
    request = tts_pb2.SynthesizeRequest(text=SHORT)
    assert 0 < limited_stub.Synthesize(request).duration_seconds < LIMIT_S
    assert list(limited_stub.StreamSynthesize(request))[-1].summary.duration_seconds > 0


def test_audio_past_the_limit_is_out_of_range_on_both_calls(
    limited: TtsBackend, limited_stub: tts_pb2_grpc.TextToSpeechStub
) -> None:
    request = tts_pb2.SynthesizeRequest(text=LONG)
    with pytest.raises(grpc.RpcError) as unary:
        limited_stub.Synthesize(request)
    sent = 0
    with pytest.raises(grpc.RpcError) as stream:
        for message in limited_stub.StreamSynthesize(request):
            sent += len(message.audio_chunk)
    for error in (unary.value, stream.value):
        assert error.code() == grpc.StatusCode.OUT_OF_RANGE, error.details()
        assert f"longer than {LIMIT_S} s" in error.details()
        assert "TTS_MAX_AUDIO_S" in error.details()
    assert sent <= LIMIT_S * RATE_HZ * 2  # no audio past the limit left the server
    ended = [json.loads(line) for line in limited.log_lines("synthesis error")]
    assert len(ended) == 2
    assert all(float(str(entry["audio_seconds"])) <= LIMIT_S for entry in ended)
    assert limited.process.is_running()


def test_the_issue_reproduction_is_refused_not_too_big_to_send(
    stub: tts_pb2_grpc.TextToSpeechStub,
) -> None:
    """5,000 characters of digits at the slowest rate: 40+ minutes, over 64 MiB as one reply."""
    request = tts_pb2.SynthesizeRequest(text=("9999999 " * 625)[:5000], speaking_rate=0.25)
    with pytest.raises(grpc.RpcError) as unary:
        stub.Synthesize(request)
    assert unary.value.code() == grpc.StatusCode.OUT_OF_RANGE, unary.value.details()
    assert "longer than 600 s" in unary.value.details()


def test_a_unary_reply_always_fits_the_send_limit() -> None:
    limit = AudioLimit(max_seconds=3600, max_reply_bytes=MAX_MESSAGE)
    for rate in (8000, 22050, 24000, 48000, 192_000):
        samples = limit.max_samples(rate)
        assert samples * 2 + REPLY_OVERHEAD_BYTES <= MAX_MESSAGE
    assert AudioLimit(max_seconds=600, max_reply_bytes=MAX_MESSAGE).max_samples(22050) == (
        600 * 22050
    )
