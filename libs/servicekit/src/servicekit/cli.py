"""The command line of a service: no options but ``--help``; settings come from the environment.

``--help`` lists the settings by running the service's own settings loader on
an empty environment with a recording :class:`~servicekit.settings.Env`, so the
list is always the one the code reads (names, defaults, accepted values). Any
other argument is refused with one line and exit status 2, instead of being
silently ignored while the server starts.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence

from servicekit.settings import Env, SettingsError, Variable
from servicekit.telemetry_settings import load_telemetry_settings, package_version

SettingsLoader = Callable[[Env], object]


def handle_command_line(
    program: str,
    description: str,
    load_settings: SettingsLoader,
    argv: Sequence[str] | None = None,
    *,
    service: str | None = None,
    version: str | None = None,
) -> None:
    """Return when there are no arguments; print help (exit 0) or refuse (exit 2).

    ``service``/``version``: the DD_SERVICE/DD_VERSION defaults the process
    passes to ``configure_telemetry`` (default: the program name and its
    package version, as ``configure_telemetry`` does).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        return
    if args in (["-h"], ["--help"]):
        print(help_text(program, description, load_settings, service=service, version=version))
        raise SystemExit(0)
    print(
        f"{program}: unexpected argument {args[0]!r}: settings come from environment "
        f"variables (see {program} --help)",
        file=sys.stderr,
    )
    raise SystemExit(2)


def help_text(
    program: str,
    description: str,
    load_settings: SettingsLoader,
    *,
    service: str | None = None,
    version: str | None = None,
) -> str:
    settings = _read(load_settings)
    name = service or program
    telemetry = _read(
        lambda env: load_telemetry_settings(name, version or package_version(name), env)
    )
    return "\n".join(
        [
            f"usage: {program} [-h]",
            "",
            description,
            "",
            "Settings, from environment variables (a bad value stops start-up with one",
            "line naming the variable, exit status 2):",
            *_table(settings),
            "",
            "Tracing and logs (ddtrace reads any other DD_* variable itself):",
            *_table(telemetry),
        ]
    )


def settings_read_by(load_settings: SettingsLoader) -> list[Variable]:
    """The variables ``load_settings`` reads, in the order it reads them."""
    return _read(load_settings)


def _read(load_settings: SettingsLoader) -> list[Variable]:
    record: list[Variable] = []
    # A loader may stop at a cross-check; what it read until then is listed.
    with contextlib.suppress(SettingsError):
        load_settings(Env({}, record=record))
    return record


def _table(variables: list[Variable]) -> list[str]:
    width = max((len(v.name) for v in variables), default=0)
    return [f"  {v.name:<{width}}  {v.expected} (default: {v.default})" for v in variables]
