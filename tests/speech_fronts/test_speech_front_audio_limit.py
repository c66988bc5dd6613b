"""A valid text whose audio passes the backend's limit: 422 on both versions, never a 503."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from speech_front.storage import audio_id
from testkit.fronts import FrontServer
from testkit.tts_backend import TtsBackend, running_tts_backend

LIMIT_S = 30
# The reproduction: 5,000 characters that read as 40 minutes of numbers.
DIGITS = ("1234567. " * 556)[:5000]


@pytest.fixture(scope="module")
def backend() -> Iterator[TtsBackend]:
    """Overrides the suite's backend: a 30 s audio limit keeps the test short."""
    with running_tts_backend({"TTS_WORKERS": "1", "TTS_MAX_AUDIO_S": str(LIMIT_S)}) as server:
        yield server


def test_audio_over_the_limit_is_a_422_that_says_why(
    http: httpx.Client, front: FrontServer, audio_dir: Path
) -> None:
    before = front.backend_syntheses()
    reply = http.post("/speech", json={"text": DIGITS})
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"] == "audio_too_long"
    assert f"longer than {LIMIT_S} s" in reply.json()["detail"]
    assert "retry-after" not in reply.headers
    assert front.backend_syntheses() == before + 1
    assert not (audio_dir / f"{audio_id('espeak', '', DIGITS)}.wav").exists()
    assert not [path for path in audio_dir.iterdir() if path.name.endswith(".tmp")]


def test_audio_within_the_limit_is_still_made(http: httpx.Client) -> None:
    reply = http.post("/speech", json={"text": "Within the limit."})
    assert reply.status_code == 201, reply.text
