"""``uv run tts-v2``."""

from __future__ import annotations

from speech_front.main import run_front

from tts_v2.app import create_app
from tts_v2.settings import load_settings


def main() -> None:
    run_front(
        "tts-v2",
        "text-to-speech v2 (canary): serves stored audio without the backend, one synthesis for "
        "identical concurrent requests, streams misses to disk.",
        load_settings,
        create_app,
    )


if __name__ == "__main__":
    main()
