"""``uv run tts-v1``."""

from __future__ import annotations

from speech_front.main import run_front

from tts_v1.app import create_app
from tts_v1.settings import load_settings


def main() -> None:
    run_front(
        "tts-v1",
        "text-to-speech v1 (stable): reads a book, calls the backend's unary Synthesize on every "
        "request and stores the WAV on the audio volume.",
        load_settings,
        create_app,
    )


if __name__ == "__main__":
    main()
