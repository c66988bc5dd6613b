"""Defaults of the command-line flags, read from the environment.

In a container the client is configured through environment variables (the
Kubernetes Deployment sets ``GATEWAY_URL`` and, inside the mesh where /books is
another host, ``POLL_BOOKS_URL``); on a workstation the defaults point at the
local stack. A flag given on the command line always wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from servicekit.settings import Env


@dataclass(frozen=True)
class ClientSettings:
    gateway_url: str
    books_url: str | None
    rate: float
    concurrency: int
    max_error_rate: float
    wait_s: float
    heartbeat_file: Path | None
    agent_url: str
    datadog_api_url: str | None


def load_settings(env: Env | None = None) -> ClientSettings:
    env = env or Env()
    books = env.optional_text("POLL_BOOKS_URL")
    return ClientSettings(
        gateway_url=env.url("GATEWAY_URL", "http://127.0.0.1:8000"),
        books_url=env.url("POLL_BOOKS_URL", "http://127.0.0.1:8081") if books else None,
        rate=env.number("POLL_RATE", 20.0, minimum=0.0, maximum=10_000.0),
        concurrency=env.integer("POLL_CONCURRENCY", 32, minimum=1, maximum=1024),
        max_error_rate=env.number("MAX_ERROR_RATE", 0.01, minimum=0.0, maximum=1.0),
        wait_s=env.number("POLL_WAIT_S", 0.0, minimum=0.0, maximum=3600.0),
        heartbeat_file=(
            env.path("POLL_HEARTBEAT", "") if env.optional_text("POLL_HEARTBEAT") else None
        ),
        agent_url=env.url("AGENT_URL", "http://127.0.0.1:8126"),
        datadog_api_url=(
            env.url("DATADOG_API_URL", "https://api.datadoghq.com")
            if env.optional_text("DATADOG_API_URL")
            else None
        ),
    )
