"""Local gateway settings (environment variables, validated at start-up)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from servicekit.settings import Env, SettingsError

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
    )
