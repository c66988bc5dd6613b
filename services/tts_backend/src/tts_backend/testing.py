"""Run tts-backend as a real process on a free loopback port (tests, bench scripts).

    with running_tts_backend({"TTS_WORKERS": "2"}) as backend:
        channel = grpc.insecure_channel(backend.address)

Not used by the service itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from servicekit.testing import ServiceProcess, free_port


@dataclass
class TtsBackend:
    process: ServiceProcess
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

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
    environ = {**(env or {}), "HOST": "127.0.0.1", "PORT": str(port)}
    backend = TtsBackend(ServiceProcess(["tts-backend"], environ, name="tts-backend"), port)
    backend.process.start()
    try:
        if wait_ready:
            backend.process.wait_grpc_ready(backend.address)
        yield backend
    finally:
        backend.process.stop()
