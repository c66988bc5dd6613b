"""Bad input gets its status and a message, the server stays up; cancel/deadline stop work."""

from __future__ import annotations

import json
import time
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from testkit.process import child_pids, frozen
from testkit.tts_backend import TtsBackend
from tts.v1 import tts_pb2, tts_pb2_grpc

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
OK_TEXT = "Hello there."

# What a request sets besides OK_TEXT -> the status and a word of the message it gets.
BAD_REQUESTS: dict[str, tuple[dict[str, Any], grpc.StatusCode, str]] = {
    "empty text": ({"text": ""}, INVALID, "empty"),
    "blank text": ({"text": " \n\t "}, INVALID, "empty"),
    "text over 5000": ({"text": "a" * 5001}, INVALID, "5000"),
    "NUL in text": ({"text": "a\x00b"}, INVALID, "NUL"),
    "unknown voice": ({"voice": "klingon"}, NOT_FOUND, "klingon"),
    "unknown language": ({"language_code": "xx-YY"}, NOT_FOUND, "xx-YY"),
    "malformed language": ({"language_code": "en_US!"}, INVALID, "language_code"),
    "voice/language mismatch": ({"voice": "de", "language_code": "fr"}, INVALID, "does not speak"),
    "rate too low": ({"speaking_rate": 0.1}, INVALID, "speaking_rate"),
    "rate too high": ({"speaking_rate": 4.5}, INVALID, "speaking_rate"),
    "rate negative": ({"speaking_rate": -1}, INVALID, "speaking_rate"),
    "rate NaN": ({"speaking_rate": float("nan")}, INVALID, "speaking_rate"),
    "unsupported encoding": ({"audio_encoding": 7}, INVALID, "audio_encoding"),
    "other sample rate": ({"sample_rate_hertz": 16000}, INVALID, "22050"),
    "negative sample rate": ({"sample_rate_hertz": -5}, INVALID, "sample_rate_hertz"),
}


def assert_serving(backend: TtsBackend, stub: tts_pb2_grpc.TextToSpeechStub) -> None:
    assert backend.process.is_running()
    with grpc.insecure_channel(backend.address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert stub.Synthesize(tts_pb2.SynthesizeRequest(text=OK_TEXT)).duration_seconds > 0


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_input_gets_its_status_and_a_message(
    backend: TtsBackend, stub: tts_pb2_grpc.TextToSpeechStub, case: str
) -> None:
    fields, code, words = BAD_REQUESTS[case]
    request = tts_pb2.SynthesizeRequest(**{"text": OK_TEXT, **fields})
    with pytest.raises(grpc.RpcError) as unary:
        stub.Synthesize(request)
    with pytest.raises(grpc.RpcError) as stream:
        list(stub.StreamSynthesize(request))
    for error in (unary.value, stream.value):
        assert error.code() == code, error.details()
        assert words in error.details()
    assert_serving(backend, stub)


def test_oversized_message_is_refused_by_the_size_limit(
    backend: TtsBackend, stub: tts_pb2_grpc.TextToSpeechStub
) -> None:
    with pytest.raises(grpc.RpcError) as error:
        stub.Synthesize(tts_pb2.SynthesizeRequest(text="a" * (2 * 1024 * 1024)))
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_serving(backend, stub)


def test_list_voices_rejects_a_malformed_language(stub: tts_pb2_grpc.TextToSpeechStub) -> None:
    with pytest.raises(grpc.RpcError) as error:
        stub.ListVoices(tts_pb2.ListVoicesRequest(language_code="not a tag"))
    assert error.value.code() == INVALID


def _entries(backend: TtsBackend, message: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in backend.log_lines(message)]


def _wait_for_entry(backend: TtsBackend, message: str, count: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        entries = _entries(backend, message)
        if len(entries) >= count:
            return entries
        time.sleep(0.02)
    raise AssertionError(f"no {message!r} log line")


def _segments_worked(backend: TtsBackend) -> int:
    """Segments the worker processes finished or aborted, from the pool's debug log."""
    return len(backend.log_lines("segment synthesized")) + len(backend.log_lines("segment aborted"))


SENTENCES = 200
LONG_TEXT = " ".join(f"Sentence {i} is short." for i in range(SENTENCES))


def test_cancelled_stream_stops_synthesis(backend: TtsBackend) -> None:
    cancelled_before = len(_entries(backend, "synthesis cancelled"))
    worked_before = _segments_worked(backend)
    # No flow-control window growth: a reader that stops reading holds the server back.
    options = [("grpc.http2.bdp_probe", 0)]
    with grpc.insecure_channel(backend.address, options=options) as channel:
        stub = tts_pb2_grpc.TextToSpeechStub(channel)
        request = tts_pb2.SynthesizeRequest(text=LONG_TEXT, speaking_rate=0.5)
        call = stub.StreamSynthesize(request)
        assert next(call).WhichOneof("payload") == "format"
        assert next(call).WhichOneof("payload") == "audio_chunk"
        call.cancel()

        entry = _wait_for_entry(backend, "synthesis cancelled", cancelled_before + 1)[-1]
        assert entry["rpc.method"] == "StreamSynthesize"
        assert entry["segments_total"] == SENTENCES
        assert isinstance(entry["segments_done"], int) and entry["segments_done"] < SENTENCES
        # A later request queues behind anything the cancelled stream left behind, so
        # once it is answered every segment of the stream that will ever run has run.
        stub.Synthesize(tts_pb2.SynthesizeRequest(text=OK_TEXT))
    worked = _segments_worked(backend) - worked_before - 1
    # What it had handed to gRPC plus the pipeline's look-ahead (2), nothing more.
    assert entry["segments_done"] <= worked <= entry["segments_done"] + 2, worked


def test_deadline_stops_unary_synthesis(
    backend: TtsBackend, stub: tts_pb2_grpc.TextToSpeechStub
) -> None:
    """The workers are frozen, so the deadline surely passes mid-synthesis."""
    cancelled_before = len(_entries(backend, "synthesis cancelled"))
    worked_before = _segments_worked(backend)
    with frozen(*child_pids(backend.process.pid)):
        with pytest.raises(grpc.RpcError) as error:
            stub.Synthesize(tts_pb2.SynthesizeRequest(text=LONG_TEXT), timeout=1.0)
        assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        entry = _wait_for_entry(backend, "synthesis cancelled", cancelled_before + 1)[-1]
    assert entry["rpc.method"] == "Synthesize"
    assert entry["segments_total"] == SENTENCES
    assert entry["segments_done"] == 0
    # Answered only once the frozen workers drained whatever had reached them.
    stub.Synthesize(tts_pb2.SynthesizeRequest(text=OK_TEXT))
    worked = _segments_worked(backend) - worked_before - 1
    # Only the segments already handed to the workers (pipeline look-ahead), not the rest.
    assert worked < SENTENCES // 10, worked
