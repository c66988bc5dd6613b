"""tts-backend settings, read from the environment once at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass

from servicekit.settings import Env, SettingsError

MiB = 1024 * 1024


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    engine: str  # "espeak" | "google"
    workers: int  # eSpeak worker processes
    max_text_chars: int
    max_audio_s: float  # longest audio one request may produce (unary and streaming alike)
    segment_chars: int  # longest text segment synthesized (and streamed) at once
    pipeline_depth: int  # segments of one request synthesized ahead of the reader
    grace_period_s: float  # in-flight calls may finish within this after SIGTERM
    drain_delay_s: float  # NOT_SERVING but still accepting calls, before the grace period
    default_voice: str  # "" = engine default
    max_receive_bytes: int
    max_send_bytes: int
    google_endpoint: str | None  # host:port; None = Google's public endpoint
    google_insecure: bool  # plaintext + anonymous credentials (local fakes only)
    google_timeout_s: float
    log_level: str

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def load_settings(env: Env | None = None) -> Settings:
    env = env or Env()
    engine = env.text("TTS_ENGINE", "espeak", choices=("espeak", "google"))
    google_endpoint = env.optional_text("GOOGLE_TTS_ENDPOINT")
    if google_endpoint is not None:
        google_endpoint = env.address("GOOGLE_TTS_ENDPOINT", google_endpoint)
    settings = Settings(
        host=env.text("HOST", "127.0.0.1"),
        port=env.port("PORT", 50051),
        engine=engine,
        workers=env.integer("TTS_WORKERS", _cpu_count(), minimum=1, maximum=64),
        max_text_chars=env.integer("TTS_MAX_TEXT_CHARS", 5000, minimum=1, maximum=100_000),
        max_audio_s=env.number("TTS_MAX_AUDIO_S", 600.0, minimum=1.0, maximum=86_400.0),
        segment_chars=env.integer("TTS_SEGMENT_CHARS", 400, minimum=20, maximum=5000),
        pipeline_depth=env.integer("TTS_PIPELINE_DEPTH", 2, minimum=1, maximum=16),
        grace_period_s=env.number("TTS_GRACE_PERIOD_S", 10.0, minimum=0.0, maximum=300.0),
        drain_delay_s=env.number("TTS_DRAIN_DELAY_S", 0.0, minimum=0.0, maximum=300.0),
        default_voice=env.text("TTS_DEFAULT_VOICE", "", max_length=200),
        max_receive_bytes=env.integer("TTS_MAX_RECEIVE_BYTES", 1 * MiB, minimum=4096),
        max_send_bytes=env.integer("TTS_MAX_SEND_BYTES", 64 * MiB, minimum=4 * MiB),
        google_endpoint=google_endpoint,
        google_insecure=env.flag("GOOGLE_TTS_INSECURE", False),
        google_timeout_s=env.number("GOOGLE_TTS_TIMEOUT_S", 30.0, minimum=0.1, maximum=600.0),
        log_level=env.text("LOG_LEVEL", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    )
    if settings.google_insecure and settings.google_endpoint is None:
        raise SettingsError("GOOGLE_TTS_INSECURE", "true", "only with GOOGLE_TTS_ENDPOINT set")
    return settings
