"""What the stack runs: one :class:`ServiceSpec` per process, built from the stack's settings.

Every child gets its ports, its peers' addresses, the unified service tags
(``DD_SERVICE``/``DD_ENV``/``DD_VERSION``; both fronts are ``text-to-speech``,
versions ``v1`` and ``v2``), ``DD_TRACE_AGENT_URL`` pointing at the APM test
agent, and data paths under the one data directory.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servicekit.scripts import console_script

from devstack.gateway.upstreams import format_upstreams
from devstack.stackstate import weights_path

LOOPBACK = "127.0.0.1"
GATEWAY = "local-gateway"
# The warm parent (servicekit.prefork) in front of a console script: `python -m ... SCRIPT`.
PREFORK = (sys.executable, "-m", "servicekit.prefork")
WARM_RELOAD_ENV = "STACK_WARM_RELOAD"


@dataclass(frozen=True)
class Ports:
    gateway: int = 8000
    books: int = 8081
    tts_v1: int = 8082
    tts_v2: int = 8083
    tts_backend: int = 50051
    agent: int = 8126
    otlp_http: int = 4318
    otlp_grpc: int = 4317

    @classmethod
    def from_base(cls, base: int) -> Ports:
        """``--port-base B``: gateway B, books B+1, v1 B+2, v2 B+3, backend B+4, agent B+5..7."""
        return cls(base, base + 1, base + 2, base + 3, base + 4, base + 5, base + 6, base + 7)

    def named(self) -> dict[str, int]:
        return {
            "local-gateway": self.gateway,
            "books": self.books,
            "tts-v1": self.tts_v1,
            "tts-v2": self.tts_v2,
            "tts-backend": self.tts_backend,
            "apm-test-agent": self.agent,
            "apm-test-agent (OTLP HTTP)": self.otlp_http,
            "apm-test-agent (OTLP gRPC)": self.otlp_grpc,
        }

    def flags(self) -> list[str]:
        """The ``stack up`` flags that choose these ports (``--tts-v1-port=8082``, ...)."""
        return [f"--{name.replace('_', '-')}-port={port}" for name, port in self.__dict__.items()]

    @property
    def gateway_url(self) -> str:
        return f"http://{LOOPBACK}:{self.gateway}"


@dataclass(frozen=True)
class StackConfig:
    ports: Ports
    data_dir: Path
    istio_dir: Path
    dd_env: str = "local"
    with_client: bool = False
    client_rate: float = 2.0
    # --books-db postgres: the local server's database (None: SQLite under data_dir).
    books_database_url: str | None = None
    reload: bool = True  # the gateway follows edits to istio_dir (services: devstack.reload)
    # The gateway's admin API (readiness of its destinations): a Unix socket.
    gateway_admin_socket: Path | None = None
    # How long the APM test agent keeps a trace (devstack.apm_agent).
    trace_retention: str = "10m"

    @property
    def gateway_url(self) -> str:
        return self.ports.gateway_url

    @property
    def agent_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.agent}"


@dataclass(frozen=True)
class Probe:
    """How to tell a child is ready: ``http`` (GET answers 200), ``grpc`` (health
    SERVING), ``tcp`` (the port accepts connections) or ``command`` (exits 0)."""

    kind: str
    target: str


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    command: list[str]
    env: dict[str, str]
    probe: Probe | None
    # Long-running services are restarted when they die; the polling client is not.
    restart: bool = True
    # Stopped after every other service (the APM agent: their last traces flush to it).
    stop_last: bool = False
    # Started once every other service is ready (the polling client).
    start_when_ready: bool = False
    # The gateway destination it serves (GATEWAY_UPSTREAMS key): the stack tells the
    # gateway when it stops or starts being ready, as Kubernetes endpoints do.
    gateway_key: str | None = None
    # The port it listens on (what `stack status` shows).
    port: int | None = None
    # The signal it gets when the stack itself dies (PR_SET_PDEATHSIG).
    death_signal: int = signal.SIGTERM
    # Started, and ready, before every other service (the database).
    start_first: bool = False
    # How it is asked to stop (PostgreSQL: SIGINT, its fast shutdown).
    stop_signal: int = signal.SIGTERM
    # Runs under servicekit.prefork's warm parent: an edit reloads it with SIGHUP.
    warm: bool = False

    @property
    def script(self) -> str:
        """The service's console script (behind the warm parent's command when warm)."""
        return self.command[len(PREFORK) if self.warm else 0] if self.command else ""

    @property
    def args(self) -> list[str]:
        """The arguments after the console script."""
        return self.command[len(PREFORK) + 1 if self.warm else 1 :]


def warm_spec(
    name: str, script: str, env: dict[str, str], probe: Probe, **fields: Any
) -> ServiceSpec:
    """A service run by its warm parent (servicekit.prefork): a reload forks a fresh child.

    ``fields``: the other :class:`ServiceSpec` fields.

    ``STACK_WARM_RELOAD=false`` in the stack's environment runs the script
    itself instead (every reload a restart of the process, as before).
    """
    if os.environ.get(WARM_RELOAD_ENV, "true").strip().lower() in ("false", "0", "no"):
        return ServiceSpec(name, [console_script(script)], env, probe, **fields)
    return ServiceSpec(name, [*PREFORK, console_script(script)], env, probe, warm=True, **fields)


def build_specs(config: StackConfig) -> list[ServiceSpec]:
    """Every process of the stack, in the order the supervisor starts them."""
    tracing = _tracing_env(config)
    specs = [
        _agent_spec(config),
        _books_spec(config, tracing),
        _backend_spec(config, tracing),
        _front_spec(config, "v1", config.ports.tts_v1, tracing),
        _front_spec(config, "v2", config.ports.tts_v2, tracing),
        _gateway_spec(config, tracing),
    ]
    if config.with_client:
        specs.append(_client_spec(config, tracing))
    return specs


def _url(port: int) -> str:
    return f"http://{LOOPBACK}:{port}"


def _tracing_env(config: StackConfig) -> dict[str, str]:
    """What every traced child shares: the APM agent, the env tag, loopback."""
    return {
        "DD_ENV": config.dd_env,
        "DD_TRACE_AGENT_URL": config.agent_url,
        "DD_TRACE_ENABLED": "true",
        "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
        "DD_REMOTE_CONFIGURATION_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
        "HOST": LOOPBACK,
    }


def _agent_spec(config: StackConfig) -> ServiceSpec:
    ports = config.ports
    return ServiceSpec(
        "apm-test-agent",
        [
            sys.executable,
            "-m",
            "devstack.apm_agent",
            f"--retention={config.trace_retention}",
            f"--host={LOOPBACK}",
            f"--port={ports.agent}",
            f"--otlp-http-port={ports.otlp_http}",
            f"--otlp-grpc-port={ports.otlp_grpc}",
            f"--snapshot-dir={config.data_dir.resolve() / 'snapshots'}",
            "--log-level=WARNING",
        ],
        {"PYTHONUNBUFFERED": "1", "DD_TRACE_ENABLED": "false"},
        Probe("http", f"{config.agent_url}/info"),
        stop_last=True,
        port=ports.agent,
    )


def _books_spec(config: StackConfig, tracing: dict[str, str]) -> ServiceSpec:
    if config.books_database_url:
        database = {"BOOKS_DATABASE_URL": config.books_database_url}
    else:
        database = {"BOOKS_DB_PATH": str(config.data_dir.resolve() / "books.db")}
    return warm_spec(
        "books",
        "books",
        {
            **tracing,
            "PORT": str(config.ports.books),
            **database,
            "DD_SERVICE": "books",
            "DD_VERSION": "v1",
        },
        Probe("http", f"{_url(config.ports.books)}/readyz"),
        gateway_key="books",
        port=config.ports.books,
    )


def _backend_addr(config: StackConfig) -> str:
    return f"{LOOPBACK}:{config.ports.tts_backend}"


def _backend_spec(config: StackConfig, tracing: dict[str, str]) -> ServiceSpec:
    return warm_spec(
        "tts-backend",
        "tts-backend",
        {
            **tracing,
            "PORT": str(config.ports.tts_backend),
            "DD_SERVICE": "tts-backend",
            "DD_VERSION": "v1",
        },
        Probe("grpc", _backend_addr(config)),
        port=config.ports.tts_backend,
    )


def _front_spec(
    config: StackConfig, version: str, port: int, tracing: dict[str, str]
) -> ServiceSpec:
    """``tts-v1`` or ``tts-v2``: one service (``text-to-speech``), two versions."""
    return warm_spec(
        f"tts-{version}",
        f"tts-{version}",
        {
            **tracing,
            "BOOKS_URL": _url(config.ports.books),
            "TTS_BACKEND_ADDR": _backend_addr(config),
            "AUDIO_DIR": str(config.data_dir.resolve() / "audio"),
            "PORT": str(port),
            "DD_SERVICE": "text-to-speech",
            "DD_VERSION": version,
        },
        Probe("http", f"{_url(port)}/readyz"),
        gateway_key=f"text-to-speech/{version}",
        port=port,
    )


def _gateway_spec(config: StackConfig, tracing: dict[str, str]) -> ServiceSpec:
    ports = config.ports
    upstreams = {
        "books": _url(ports.books),
        "text-to-speech/v1": _url(ports.tts_v1),
        "text-to-speech/v2": _url(ports.tts_v2),
    }
    admin = (
        {"GATEWAY_ADMIN_SOCKET": str(config.gateway_admin_socket)}
        if config.gateway_admin_socket is not None
        else {}
    )
    return warm_spec(
        GATEWAY,
        "local-gateway",
        {
            **tracing,
            "DD_SERVICE": "local-gateway",
            "PORT": str(ports.gateway),
            "GATEWAY_ISTIO_DIR": str(config.istio_dir.resolve()),
            "GATEWAY_UPSTREAMS": format_upstreams(upstreams),
            "GATEWAY_RELOAD": "true" if config.reload else "false",
            "GATEWAY_WEIGHTS_FILE": str(weights_path(config.data_dir.resolve())),
            **admin,
        },
        Probe("tcp", f"{LOOPBACK}:{ports.gateway}"),
        port=ports.gateway,
    )


def _client_spec(config: StackConfig, tracing: dict[str, str]) -> ServiceSpec:
    """The polling client: started once the rest is ready, never restarted."""
    return ServiceSpec(
        "client",
        [
            console_script("client"),
            "poll",
            "--gateway",
            config.gateway_url,
            "--rate",
            str(config.client_rate),
        ],
        {**tracing, "DD_SERVICE": "client", "DD_VERSION": "v1"},
        None,
        restart=False,
        start_when_ready=True,
    )
