"""``tts-backend``: the gRPC text-to-speech server."""

from __future__ import annotations

import asyncio
import logging
import sys

from servicekit.main import run_service

from tts_backend.settings import Settings, load_settings

SERVICE = "tts-backend"


DESCRIPTION = (
    "gRPC text-to-speech server (tts.v1.TextToSpeech, health, reflection): "
    "eSpeak NG in-process by default, Google Cloud TTS with TTS_ENGINE=google."
)


def main() -> None:
    run_service(SERVICE, DESCRIPTION, load_settings, _serve, log_level=lambda s: s.log_level)


def _serve(settings: Settings) -> None:
    from tts_backend.server import serve

    try:
        asyncio.run(serve(settings))
    except (OSError, RuntimeError) as error:
        logging.getLogger(SERVICE).error("cannot serve", exc_info=error)
        sys.exit(1)


if __name__ == "__main__":
    main()
