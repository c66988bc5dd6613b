"""The one exception the command line turns into a single line on stderr."""

from __future__ import annotations


class ClientError(Exception):
    """A failure the user can act on (unreachable URL, no traces, ...).

    ``__main__`` prints ``client: <message>`` and exits with status 1, never a
    traceback.
    """


class ConfigError(ClientError):
    """A setting the user must fix (missing or refused API keys): exit status 2."""
