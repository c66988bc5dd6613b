from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from testkit.tts_backend import TtsBackend, running_tts_backend
from tts.v1 import tts_pb2_grpc

MAX_MESSAGE = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def backend() -> Iterator[TtsBackend]:
    """One eSpeak backend with two workers and per-segment debug logs, per test module."""
    with running_tts_backend({"TTS_WORKERS": "2", "LOG_LEVEL": "DEBUG"}) as server:
        yield server


@pytest.fixture(scope="module")
def channel(backend: TtsBackend) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(
        backend.address, options=[("grpc.max_receive_message_length", MAX_MESSAGE)]
    ) as chan:
        yield chan


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> tts_pb2_grpc.TextToSpeechStub:
    return tts_pb2_grpc.TextToSpeechStub(channel)
