"""text-to-speech v1 (stable)."""

from __future__ import annotations

from litestar import Litestar
from speech_front.app import create_speech_app
from speech_front.settings import FrontSettings

from tts_v1.strategy import SynthesizeEveryTime

BANNER = "text-to-speech v1 (stable): synthesizes every request"


def create_app(settings: FrontSettings) -> Litestar:
    return create_speech_app(settings, banner=BANNER, strategy_factory=SynthesizeEveryTime)
