"""Local gateway settings (environment variables, validated at start-up)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from servicekit.settings import Env, SettingsError

from devstack.gateway.http1 import EdgeLimits
from devstack.gateway.upstreams import DEFAULT_UPSTREAMS, parse_upstreams


@dataclass(frozen=True)
class GatewaySettings:
    host: str
    port: int
    istio_dir: Path
    gateway_name: str | None
    upstreams: dict[str, str]
    max_body_bytes: int
    log_requests: bool
    reload: bool = True
    limits: EdgeLimits = field(default_factory=EdgeLimits)
    # The admin API (readiness of the destinations, state); None: no admin API.
    admin_socket: Path | None = None
    # Canary weights over the Istio files' (devstack.gateway.weights); None: none.
    weights_file: Path | None = None


def load_settings(env: Env | None = None) -> GatewaySettings:
    env = env or Env()
    raw_upstreams = env.text("GATEWAY_UPSTREAMS", DEFAULT_UPSTREAMS)
    try:
        upstreams = parse_upstreams(raw_upstreams)
    except ValueError as error:
        raise SettingsError("GATEWAY_UPSTREAMS", raw_upstreams, str(error)) from None
    return GatewaySettings(
        host=env.text("HOST", "127.0.0.1"),
        port=env.port("PORT", 8000),
        istio_dir=env.path("GATEWAY_ISTIO_DIR", "k8s/istio"),
        gateway_name=env.optional_text("GATEWAY_NAME"),
        upstreams=upstreams,
        max_body_bytes=env.integer("GATEWAY_MAX_BODY_BYTES", 16 * 1024 * 1024, minimum=1024),
        log_requests=env.flag("GATEWAY_ACCESS_LOG", False),
        reload=env.flag("GATEWAY_RELOAD", True),
        limits=EdgeLimits(
            stream_idle_timeout_s=env.number(
                "GATEWAY_STREAM_IDLE_TIMEOUT_S", 300.0, minimum=0.0, maximum=86400.0
            ),
            request_headers_timeout_s=env.number(
                "GATEWAY_REQUEST_HEADERS_TIMEOUT_S", 0.0, minimum=0.0, maximum=86400.0
            ),
            idle_timeout_s=env.number(
                "GATEWAY_IDLE_TIMEOUT_S", 3600.0, minimum=0.0, maximum=86400.0
            ),
        ),
        admin_socket=_optional_path(env, "GATEWAY_ADMIN_SOCKET"),
        weights_file=_weights_file(env),
    )


def _weights_file(env: Env) -> Path | None:
    value = env.optional_text(
        "GATEWAY_WEIGHTS_FILE", expected="a JSON file of canary weights (unset: none)"
    )
    return Path(value) if value else None


def _optional_path(env: Env, name: str) -> Path | None:
    value = env.optional_text(name, expected="a Unix socket path (unset: no admin API)")
    if not value:
        return None
    if len(value.encode()) > 100:
        raise SettingsError(name, value[:40] + "...", "a Unix socket path of at most 100 bytes")
    return Path(value)
