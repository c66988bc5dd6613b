"""Run the text-to-speech fronts (and the backend they need) as real processes.

For the fronts' tests and the bench script; not used by the services.

    with running_tts_backend() as backend, running_books(db) as books:
        with running_front("v2", books.url, backend.address, audio_dir) as front:
            httpx.post(f"{front.url}/speech", json={"text": "hi"})
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import msgspec
from servicekit.scripts import console_script

from testkit.process import ServiceProcess, free_port

FRONT_COMMANDS = {"v1": "tts-v1", "v2": "tts-v2"}


@dataclass
class FrontServer:
    """A started text-to-speech front (v1 or v2)."""

    version: str
    process: ServiceProcess
    port: int
    audio_dir: Path
    env: dict[str, str]
    prefix: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def another(
        self,
        audio_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        wait_ready: bool = True,
        prefix: tuple[str, ...] = (),
    ) -> contextlib.AbstractContextManager[FrontServer]:
        """Another front of this version on the same books and backend (:func:`running_front`):
        its own port and ``audio_dir``, none of this one's other settings but ``env``."""
        books_url, backend_addr = self.env["BOOKS_URL"], self.env["TTS_BACKEND_ADDR"]
        return running_front(
            self.version,
            books_url,
            backend_addr,
            audio_dir,
            env=env,
            wait_ready=wait_ready,
            prefix=prefix,
        )

    def start_again(self, *, wait_ready: bool = True) -> None:
        self.process.stop()
        self.process = _front_process(self.version, self.env, self.prefix).start()
        self.wait(ready=wait_ready)

    def wait(self, *, ready: bool = True) -> None:
        """Wait for /readyz (dependencies up) or only /healthz (process serving)."""
        self.process.wait_http_ready(f"{self.url}/{'readyz' if ready else 'healthz'}")

    def backend_syntheses(self, audio_id: str | None = None) -> int:
        """How many "backend synthesis" log lines (for ``audio_id``, if given) it wrote."""
        count = 0
        for line in self.process.output().splitlines():
            if '"backend synthesis"' not in line:
                continue
            entry = msgspec.json.decode(line)
            if audio_id is None or entry.get("speech.id") == audio_id:
                count += 1
        return count


def _front_process(version: str, env: Mapping[str, str], prefix: tuple[str, ...]) -> ServiceProcess:
    command = [FRONT_COMMANDS[version]]
    if prefix:
        # A wrapper like prlimit execs the front: give it the front's path in this venv.
        command = [*prefix, console_script(FRONT_COMMANDS[version])]
    return ServiceProcess(command, env, name=f"tts-{version}")


@contextlib.contextmanager
def running_front(
    version: str,
    books_url: str,
    backend_addr: str,
    audio_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    wait_ready: bool = True,
    prefix: tuple[str, ...] = (),
) -> Iterator[FrontServer]:
    """Start ``tts-v1``/``tts-v2`` on a free port; wait for /readyz (or /healthz)."""
    port = free_port()
    environ = {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "BOOKS_URL": books_url,
        "TTS_BACKEND_ADDR": backend_addr,
        "AUDIO_DIR": str(audio_dir),
        **(env or {}),
    }
    server = FrontServer(
        version, _front_process(version, environ, prefix).start(), port, audio_dir, environ, prefix
    )
    try:
        server.wait(ready=wait_ready)
        yield server
    finally:
        server.process.stop()
