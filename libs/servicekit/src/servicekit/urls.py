"""Base URLs (``scheme://host[:port]``) as every setting and flag takes them."""

from __future__ import annotations

from urllib.parse import urlsplit


def base_url(text: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """``text`` without a trailing slash; ValueError (the reason) unless it is scheme://host[:port].

    The one check behind ``Env.url``, the client's URL flags and the local
    gateway's ``GATEWAY_UPSTREAMS`` entries.
    """
    parts = urlsplit(text)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"expected {schemes[0]}://host[:port]")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError("bad port") from None
    return text.rstrip("/")
