"""A stand-in text-to-speech front for the canary tests: traced like the real ones.

``python stand_in_front.py`` with PORT, FRONT_VERSION (v1, v2), DELAY_MS and the
DD_* variables of a test agent: a Litestar app traced by servicekit (service
``text-to-speech``, version FRONT_VERSION) whose ``GET /`` waits DELAY_MS and
answers with the ``x-tts-version`` header, as the real fronts do. No books, no
backend: what a rollout judges is the entry spans and their latency.
"""

from __future__ import annotations

import asyncio
import os

import uvicorn
from litestar import Litestar, Response, get
from servicekit.telemetry import configure_telemetry, instrument_app


def main() -> None:
    version = os.environ["FRONT_VERSION"]
    delay_s = float(os.environ.get("DELAY_MS", "1")) / 1000.0
    configure_telemetry("text-to-speech", version=version)

    @get("/")
    async def root() -> Response[dict[str, str]]:
        await asyncio.sleep(delay_s)
        return Response({"version": version}, headers={"x-tts-version": version})

    app = instrument_app(Litestar([root], logging_config=None))
    port = int(os.environ["PORT"])
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
