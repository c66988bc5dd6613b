"""text-to-speech v2 (canary)."""

from __future__ import annotations

from litestar import Litestar
from speech_front.app import create_speech_app
from speech_front.settings import FrontSettings

from tts_v2.strategy import CachedStreaming

BANNER = "text-to-speech v2 (canary): cached, single-flight, streaming synthesis"


def create_app(settings: FrontSettings) -> Litestar:
    return create_speech_app(settings, banner=BANNER, strategy_factory=CachedStreaming)
