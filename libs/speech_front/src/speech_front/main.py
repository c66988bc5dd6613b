"""``main()`` of a front: settings or exit 2, JSON logs, serve until SIGTERM."""

from __future__ import annotations

from collections.abc import Callable

from litestar import Litestar
from servicekit.cli import handle_command_line
from servicekit.http import serve
from servicekit.logs import configure_logging
from servicekit.settings import Env, load_or_exit
from servicekit.telemetry import configure_telemetry

from speech_front.settings import FrontSettings

SERVICE_NAME = "text-to-speech"  # one service, two versions (DD_VERSION v1/v2)


def run_front(
    program: str,
    description: str,
    load_settings: Callable[[Env], FrontSettings],
    create_app: Callable[[FrontSettings], Litestar],
) -> None:
    defaults = load_settings(Env({}))  # no I/O: only to name the version in --help
    handle_command_line(
        program, description, load_settings, service=SERVICE_NAME, version=defaults.version
    )
    settings = load_or_exit(lambda: load_settings(Env()), program)
    configure_telemetry(SERVICE_NAME, version=settings.version)
    configure_logging(SERVICE_NAME)
    serve(create_app(settings), settings.host, settings.port)
