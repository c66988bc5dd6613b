"""Settings from environment variables, validated at start-up.

Every service reads its configuration through :class:`Env`. A bad value raises
:class:`SettingsError` whose message is one line naming the variable, the value
and what was expected; :func:`exit_on_bad_settings` turns it into that one line
on stderr and exit status 2, with no traceback.

    env = Env()
    host = env.text("HOST", "127.0.0.1")
    port = env.port("PORT", 8080)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeVar

from servicekit.urls import base_url

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """A setting has a value the service cannot start with."""

    def __init__(self, name: str, value: str, expected: str) -> None:
        super().__init__(f"invalid setting {name}={value!r}: expected {expected}")
        self.name = name
        self.value = value
        self.expected = expected


@dataclass(frozen=True)
class Variable:
    """One setting a loader read: what ``--help`` lists (see :mod:`servicekit.cli`)."""

    name: str
    default: str
    expected: str


class Env:
    """Typed, validated access to environment variables.

    An unset or empty variable takes the default; a set one must parse and be in
    range, or :class:`SettingsError` names it. With ``record``, every variable
    read is also appended there (name, default, what is expected), so a
    service's ``--help`` lists exactly the settings its loader reads.
    """

    def __init__(
        self, environ: Mapping[str, str] | None = None, *, record: list[Variable] | None = None
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self._record = record

    def _note(self, name: str, default: object, expected: str) -> None:
        if self._record is not None and all(v.name != name for v in self._record):
            shown = "unset" if default is None or default == "" else str(default)
            self._record.append(Variable(name, shown, expected))

    def raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def text(
        self,
        name: str,
        default: str,
        *,
        choices: tuple[str, ...] | None = None,
        max_length: int = 4096,
    ) -> str:
        self._note(name, default, "one of " + ", ".join(choices) if choices else "text")
        value = self.raw(name)
        if value is None:
            return default
        if choices is not None and value not in choices:
            raise SettingsError(name, value, "one of " + ", ".join(choices))
        if len(value) > max_length:
            raise SettingsError(name, value[:40] + "...", f"at most {max_length} characters")
        return value

    def optional_text(self, name: str, *, expected: str = "text") -> str | None:
        self._note(name, None, expected)
        return self.raw(name)

    def secret(self, name: str, *, max_bytes: int = 4096) -> str | None:
        """A secret from ``name``, or from the file ``<name>_FILE`` names; never both.

        The file form is for Kubernetes (a Secret mounted as a volume, so the
        value is in no environment, ``/proc/<pid>/environ`` or ``kubectl
        describe``); the variable form stays for local use. Both set is refused
        with one line naming both (never the value); a file that cannot be read,
        is empty, larger than ``max_bytes`` or not UTF-8 is refused too. One
        trailing newline of the file is dropped (``echo secret > file``).
        """
        file_name = f"{name}_FILE"
        self._note(name, None, f"a secret (or {file_name})")
        self._note(file_name, None, f"the path of a file holding {name}")
        value = self.raw(name)
        path = self.raw(file_name)
        if path is None:
            return value
        if value is not None:
            raise SettingsError(file_name, path, f"unset when {name} is set (one of the two)")
        expected = f"a readable, non-empty UTF-8 file of at most {max_bytes} bytes"
        try:
            with open(path, "rb") as file:
                data = file.read(max_bytes + 1)
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            raise SettingsError(file_name, path, expected) from None
        text = text.removesuffix("\n").removesuffix("\r")
        if not text or len(data) > max_bytes:
            raise SettingsError(file_name, path, expected)
        return text

    def integer(
        self,
        name: str,
        default: int,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int:
        return self._parse_number(name, default, int, "an integer", minimum, maximum)

    def number(
        self,
        name: str,
        default: float,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        return self._parse_number(name, default, float, "a number", minimum, maximum)

    def port(self, name: str, default: int) -> int:
        return self.integer(name, default, minimum=1, maximum=65535)

    def flag(self, name: str, default: bool) -> bool:
        self._note(name, "true" if default else "false", "true or false")
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise SettingsError(name, value, "true or false")

    def path(self, name: str, default: Path | str) -> Path:
        self._note(name, default, "a file-system path")
        value = self.raw(name)
        path = Path(default if value is None else value).expanduser()
        if "\x00" in str(path):
            raise SettingsError(name, str(path), "a file-system path")
        return path

    def url(self, name: str, default: str, *, schemes: tuple[str, ...] = ("http", "https")) -> str:
        self._note(name, default, "a URL like " + f"{schemes[0]}://host:port")
        value = self.raw(name) or default
        try:
            return base_url(value, schemes)
        except ValueError:
            raise SettingsError(name, value, "a URL like " + f"{schemes[0]}://host:port") from None

    def address(self, name: str, default: str) -> str:
        """A ``host:port`` address, as gRPC targets are written."""
        self._note(name, default, "host:port")
        value = self.raw(name) or default
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise SettingsError(name, value, "host:port")
        return value

    def _parse_number(
        self,
        name: str,
        default: T,
        parse: Callable[[str], T],
        kind: str,
        minimum: object,
        maximum: object,
    ) -> T:
        self._note(name, default, _range_text(kind, minimum, maximum))
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = parse(value)
        except ValueError:
            raise SettingsError(name, value, _range_text(kind, minimum, maximum)) from None
        if (minimum is not None and number < minimum) or (  # type: ignore[operator]
            maximum is not None and number > maximum  # type: ignore[operator]
        ):
            raise SettingsError(name, value, _range_text(kind, minimum, maximum))
        return number


def _range_text(kind: str, minimum: object, maximum: object) -> str:
    if minimum is not None and maximum is not None:
        return f"{kind} from {minimum} to {maximum}"
    if minimum is not None:
        return f"{kind} >= {minimum}"
    if maximum is not None:
        return f"{kind} <= {maximum}"
    return kind


def exit_on_bad_settings(error: SettingsError, program: str) -> NoReturn:
    """Print the one-line reason to stderr and exit with status 2."""
    print(f"{program}: {error}", file=sys.stderr)
    raise SystemExit(2)


def load_or_exit(loader: Callable[[], T], program: str) -> T:
    """Call ``loader``; on :class:`SettingsError` print one line and exit 2."""
    try:
        return loader()
    except SettingsError as error:
        exit_on_bad_settings(error, program)
