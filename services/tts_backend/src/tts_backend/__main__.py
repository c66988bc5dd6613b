"""``tts-backend``: the gRPC text-to-speech server."""

from __future__ import annotations

import asyncio
import logging
import sys

from servicekit.cli import handle_command_line
from servicekit.logs import configure_logging
from servicekit.settings import load_or_exit
from servicekit.telemetry import configure_telemetry

from tts_backend.settings import load_settings

SERVICE = "tts-backend"


DESCRIPTION = (
    "gRPC text-to-speech server (tts.v1.TextToSpeech, health, reflection): "
    "eSpeak NG in-process by default, Google Cloud TTS with TTS_ENGINE=google."
)


def main() -> None:
    handle_command_line(SERVICE, DESCRIPTION, load_settings)
    settings = load_or_exit(load_settings, SERVICE)
    configure_telemetry(SERVICE)
    configure_logging(SERVICE, settings.log_level)
    from tts_backend.server import serve

    try:
        asyncio.run(serve(settings))
    except (OSError, RuntimeError) as error:
        logging.getLogger(SERVICE).error("cannot serve", exc_info=error)
        sys.exit(1)


if __name__ == "__main__":
    main()
