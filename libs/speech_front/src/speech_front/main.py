"""``main()`` of a front: settings or exit 2, JSON logs, serve until SIGTERM."""

from __future__ import annotations

from collections.abc import Callable

from litestar import Litestar
from servicekit.http import serve
from servicekit.main import run_service
from servicekit.settings import Env

from speech_front.settings import FrontSettings

SERVICE_NAME = "text-to-speech"  # one service, two versions (DD_VERSION v1/v2)


def run_front(
    program: str,
    description: str,
    load_settings: Callable[[Env], FrontSettings],
    create_app: Callable[[FrontSettings], Litestar],
) -> None:
    defaults = load_settings(Env({}))  # no I/O: the version is the package's, not a setting

    def serve_front(settings: FrontSettings) -> None:
        from servicekit.telemetry import instrument_app  # configured by now (run_service)

        serve(instrument_app(create_app(settings)), settings.host, settings.port)

    run_service(
        program,
        description,
        load_settings,
        serve_front,
        service=SERVICE_NAME,
        version=defaults.version,
    )
