"""``GATEWAY_UPSTREAMS``: which local address serves each destination (host or host/subset)."""

from __future__ import annotations

from servicekit.urls import base_url

DEFAULT_UPSTREAMS = (
    "books=http://127.0.0.1:8081,"
    "text-to-speech/v1=http://127.0.0.1:8082,"
    "text-to-speech/v2=http://127.0.0.1:8083"
)


def parse_upstreams(text: str) -> dict[str, str]:
    """``"books=http://127.0.0.1:8081,text-to-speech/v1=http://..."`` -> {key: base URL}.

    Raises ValueError naming the bad entry.
    """
    result: dict[str, str] = {}
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        key, sep, url = entry.partition("=")
        key, url = key.strip(), url.strip()
        if not sep or not key:
            raise ValueError(f"bad entry {entry!r}: expected host[/subset]=http://host:port")
        try:
            result[key] = base_url(url, ("http",))
        except ValueError as error:  # "expected http://host[:port]" or "bad port"
            raise ValueError(f"bad entry {entry!r}: {error}") from None
    return result


def format_upstreams(upstreams: dict[str, str]) -> str:
    return ",".join(f"{key}={url}" for key, url in upstreams.items())
