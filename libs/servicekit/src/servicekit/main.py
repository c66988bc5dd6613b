"""One start-up for every service's ``main()``: command line, settings, telemetry, logs, serve.

The order is the same for books, tts-backend, the text-to-speech fronts and the
local gateway:

1. ``--help`` answers (or other arguments are refused) before anything is read;
2. settings are loaded and validated: a bad value is one line on stderr and
   exit status 2, before any logging is set up;
3. :func:`~servicekit.telemetry.configure_telemetry`, before the app, its
   clients or the server exist (they are instrumented as they are built);
4. :func:`~servicekit.logs.configure_logging`: JSON lines from then on, with
   the trace ids;
5. ``serve(settings)``, which blocks until SIGTERM/SIGINT.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from servicekit.cli import handle_command_line
from servicekit.logs import configure_logging
from servicekit.settings import Env, load_or_exit

S = TypeVar("S")


def run_service(
    program: str,
    description: str,
    load_settings: Callable[[Env], S],
    serve: Callable[[S], None],
    *,
    service: str | None = None,
    version: str | None = None,
    prepare: Callable[[S], None] | None = None,
    log_level: Callable[[S], str] | None = None,
) -> None:
    """Start ``program`` in the one order above and serve until it is stopped.

    ``service``/``version``: the DD_SERVICE/DD_VERSION defaults (the program
    name and its package version when not given). ``prepare``: a start-up step
    that belongs to loading the settings (it may raise ``SettingsError``, e.g.
    a database directory that cannot be created). ``log_level``: the level the
    settings choose (INFO when not given).
    """
    handle_command_line(program, description, load_settings, service=service, version=version)

    def load() -> S:
        settings = load_settings(Env())
        if prepare is not None:
            prepare(settings)
        return settings

    settings = load_or_exit(load, program)
    # Imported here, not at the top: `--help` and the settings need no ddtrace or
    # OpenTelemetry (servicekit's core installs without the `telemetry` extra).
    from servicekit.telemetry import configure_telemetry

    name = service or program
    configure_telemetry(name, version=version)
    configure_logging(name, log_level(settings) if log_level is not None else "INFO")
    serve(settings)
