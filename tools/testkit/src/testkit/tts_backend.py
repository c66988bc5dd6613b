"""Run tts-backend as a real process on a free loopback port (tests, bench scripts).

    with running_tts_backend({"TTS_WORKERS": "2"}) as backend:
        channel = grpc.insecure_channel(backend.address)

Not used by the service itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from testkit.process import ServiceProcess, free_port


@dataclass
class TtsBackend:
    """A started tts-backend process and its loopback address."""

    process: ServiceProcess
    port: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start_again(self) -> None:
        """A fresh process on the same port and settings (after stop/kill)."""
        self.process.stop()
        self.process = _process(self.port, self.env).start()
        self.process.wait_grpc_ready(self.address)

    def stop(self) -> None:
        self.process.stop()

    def log_lines(self, message: str) -> list[str]:
        """Its JSON log lines whose message is exactly ``message``."""
        needle = f'"message":"{message}"'
        return [line for line in self.process.output().splitlines() if needle in line]


@contextlib.contextmanager
def running_tts_backend(
    env: Mapping[str, str] | None = None, *, wait_ready: bool = True
) -> Iterator[TtsBackend]:
    """Start ``tts-backend``; wait until its health service says SERVING; stop it after."""
    port = free_port()
    backend = TtsBackend(_process(port, env or {}), port, dict(env or {}))
    backend.process.start()
    try:
        if wait_ready:
            backend.process.wait_grpc_ready(backend.address)
        yield backend
    finally:
        backend.process.stop()


def _process(port: int, env: Mapping[str, str]) -> ServiceProcess:
    environ = {**env, "HOST": "127.0.0.1", "PORT": str(port)}
    return ServiceProcess(["tts-backend"], environ, name="tts-backend")
