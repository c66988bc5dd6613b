"""Settings of a text-to-speech front, the same variables for v1 and v2."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from servicekit.settings import Env

MAX_BACKEND_TEXT_CHARS = 5000  # the tts.v1 contract's limit on SynthesizeRequest.text


@dataclass(frozen=True)
class FrontSettings:
    """Everything a front reads from the environment.

    ``tts_engine`` and ``tts_voice`` name the audio before it is synthesized:
    together with the text they are hashed into the file name, so they must
    describe what the backend will produce (``TTS_ENGINE`` is the backend's own
    variable; pass the same value to both). A file is always named after the
    engine the backend reports, so a mismatch costs cache hits, never wrong audio.
    """

    version: str
    host: str
    port: int
    books_url: str
    books_timeout_s: float
    backend_addr: str
    tts_timeout_s: float
    ready_timeout_s: float
    audio_dir: Path
    tts_engine: str
    tts_voice: str
    max_text_chars: int
    max_body_bytes: int
    retry_after_s: int


def load_front_settings(env: Env | None, *, version: str, default_port: int) -> FrontSettings:
    env = env or Env()
    return FrontSettings(
        version=version,
        host=env.text("HOST", "127.0.0.1"),
        port=env.port("PORT", default_port),
        books_url=env.url("BOOKS_URL", "http://127.0.0.1:8081"),
        books_timeout_s=env.number("BOOKS_TIMEOUT_S", 2.0, minimum=0.001, maximum=300.0),
        backend_addr=env.address("TTS_BACKEND_ADDR", "127.0.0.1:50051"),
        tts_timeout_s=env.number("TTS_TIMEOUT_S", 30.0, minimum=0.001, maximum=600.0),
        ready_timeout_s=env.number("READY_TIMEOUT_S", 1.0, minimum=0.001, maximum=60.0),
        audio_dir=env.path("AUDIO_DIR", "data/audio"),
        tts_engine=env.text("TTS_ENGINE", "espeak", max_length=64),
        tts_voice=env.text("TTS_VOICE", "", max_length=64),
        max_text_chars=env.integer(
            "MAX_TEXT_CHARS", MAX_BACKEND_TEXT_CHARS, minimum=1, maximum=MAX_BACKEND_TEXT_CHARS
        ),
        max_body_bytes=env.integer("MAX_BODY_BYTES", 65536, minimum=256, maximum=10_000_000),
        retry_after_s=env.integer("RETRY_AFTER_S", 1, minimum=0, maximum=3600),
    )
