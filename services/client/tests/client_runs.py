"""The ``client`` command as the tests run it, and the helper servers it talks to.

One environment for every run (the settings that would point the client
elsewhere than a test says are dropped, tracing is off), run to its end
(:func:`run_client`) or started and watched (:func:`started_client`); and
:class:`ScriptServer`, a helper script beside the tests (``contract_server.py``,
``fake_datadog.py``) serving on a free loopback port for the length of a block.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import httpx
from testkit.process import REPO_ROOT, ServiceProcess, console_script, free_port

HERE = Path(__file__).parent

# What would point the client elsewhere than the test says, or change its defaults.
DROPPED = (
    *("GATEWAY_URL", "POLL_BOOKS_URL", "POLL_RATE", "MAX_ERROR_RATE", "AGENT_URL"),
    *("DD_API_KEY", "DD_APP_KEY", "DD_SITE", "DATADOG_API_URL"),
)


def client_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without :data:`DROPPED`, untraced, plus ``env``."""
    kept = {k: v for k, v in os.environ.items() if k not in DROPPED}
    return {**kept, "DD_TRACE_ENABLED": "false", **(env or {})}


def run_client(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """``client ARGS`` to its end, its output captured."""
    return subprocess.run(
        [console_script("client"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        env=client_env(env),
    )


@contextmanager
def started_client(
    *args: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """``client ARGS`` running, stdout and stderr piped; killed at the end if still running."""
    process = subprocess.Popen(
        [console_script("client"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=client_env(env),
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


class ScriptServer:
    """``python SCRIPT --port=PORT ARGS`` on a free port; ready once ``ready_path`` answers 200.

    Its port is chosen when it is made, so a test can point the client at it
    before it listens; it starts and stops with the ``with`` block.
    """

    def __init__(self, script: Path, ready_path: str, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_path = ready_path
        self.process = ServiceProcess(
            [sys.executable, str(script), f"--port={self.port}", *args],
            name=script.stem,
            cwd=HERE,
        )

    def __enter__(self) -> Self:
        self.process.start()
        self.process.wait_http_ready(self.url + self.ready_path)
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.stop()

    def get_json(self, path: str) -> Any:
        return httpx.get(self.url + path).json()
