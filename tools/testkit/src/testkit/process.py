"""Helpers for tests and benchmarks that run services as real processes.

Not used by the services themselves (``testkit`` is a dev-only member, in no
image). One place for "start this console script
on a free loopback port, wait until it is ready, stop it", so every test suite
and bench script does it the same way.
"""

from __future__ import annotations

import abc
import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

# The one console-script lookup, shared with the stack runner (re-exported for tests).
from repomodel.workspace import find_workspace_root
from servicekit.scripts import console_script


def find_repo_root() -> Path:
    """The uv workspace root (:func:`repomodel.workspace.find_workspace_root`, the one lookup).

    Searched upwards from the working directory, then from this file, so it
    holds whether ``testkit`` is installed editable, as a wheel, or imported
    from a checkout.
    """
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        root = find_workspace_root(start)
        if root is not None:
            return root
    raise RuntimeError(
        f"no uv workspace (pyproject.toml with [tool.uv.workspace]) above {Path.cwd()}"
    )


REPO_ROOT = find_repo_root()


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (Linux ``/proc``), e.g. a server's workers."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            children += [int(child) for child in (task / "children").read_text().split()]
    return children


@contextlib.contextmanager
def frozen(*pids: int) -> Iterator[None]:
    """SIGSTOP processes, SIGCONT them after: their sockets stay open, nothing answers.

    What a caller sees of a dependency that is alive but too slow, without a
    single timing assumption.
    """
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


class Started(abc.ABC):
    """``with thing:`` starts it (``start()`` returns it) and stops it however the block ends."""

    @abc.abstractmethod
    def start(self) -> Self: ...

    @abc.abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ServiceProcess(Started):
    """A service started as a subprocess, its output captured to a log file.

    >>> with ServiceProcess(["books"], {"PORT": "9000"}) as proc:
    ...     proc.wait_http_ready("http://127.0.0.1:9000/readyz")
    """

    def __init__(
        self,
        command: list[str],
        env: Mapping[str, str] | None = None,
        *,
        name: str | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.command = [console_script(command[0]), *command[1:]]
        self.name = name or command[0]
        self.env = {**os.environ, "DD_TRACE_ENABLED": "false", **(env or {})}
        self.cwd = cwd or REPO_ROOT
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix=f"{self.name}-", suffix=".log", delete=False
        )
        self.log_path = Path(self._log.name)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=self.cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_http_ready(self, url: str, timeout: float = 30.0) -> None:
        """Poll ``url`` until it answers 200; fail fast if the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._fail_if_exited()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready at {url} after {timeout}s:\n{self.output()}")

    def wait_grpc_ready(self, address: str, timeout: float = 30.0) -> None:
        """Poll the standard gRPC health service until it says SERVING."""
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                self._fail_if_exited()
                with contextlib.suppress(grpc.RpcError):
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                time.sleep(0.05)
        raise TimeoutError(f"{self.name} not SERVING at {address} after {timeout}s")

    def wait_exit(self, timeout: float = 15.0) -> int:
        assert self.process is not None, "not started"
        return self.process.wait(timeout=timeout)

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM, wait for a graceful exit; SIGKILL the group if it hangs."""
        assert self.process is not None, "not started"
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.process.wait())

    def kill(self) -> None:
        """SIGKILL the process and everything it started."""
        assert self.process is not None, "not started"
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.terminate()
        # Anything the service started in its own process group goes too.
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()

    def _fail_if_exited(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with status {self.process.returncode}:\n{self.output()}"
            )


@contextlib.contextmanager
def running(
    command: list[str], env: Mapping[str, str] | None = None, *, ready_url: str | None = None
) -> Iterator[ServiceProcess]:
    """Start a service, wait for ``ready_url`` (if given), stop it afterwards."""
    with ServiceProcess(command, env) as proc:
        if ready_url:
            proc.wait_http_ready(ready_url)
        yield proc


def raw_http(
    url: str, request: bytes, *, half_close: bool = False, timeout: float = 30.0
) -> tuple[bytes, dict[str, str], bytes]:
    """Send ``request`` bytes as they are; return (status line, headers, body) of the answer.

    For requests an HTTP client library refuses to send (broken framing, bad
    versions). ``half_close`` shuts the sending side after the request. The body
    is read to its ``Content-Length``, or until the server closes.
    """
    host, _, port = url.removeprefix("http://").partition(":")
    with socket.create_connection((host, int(port.rstrip("/"))), timeout=timeout) as sock:
        sock.sendall(request)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status, *lines = head.split(b"\r\n")
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "-1"))
        while length < 0 or len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return status, headers, body
