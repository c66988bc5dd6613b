"""``stack status``: each service of a running stack at a glance (``docker compose ps``).

From the runner's state file (:mod:`devstack.stackstate`) and, live, the
gateway's admin API: its current weights and each destination's readiness
and outlier state as the gateway sees them.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from devstack.gatewaylink import GatewayLink, GatewayLinkError
from devstack.stackstate import read_state, runner_alive, state_path


def collect(data_dir: Path) -> dict[str, Any] | None:
    """The state file and the gateway's view; None when no stack runs on this data dir."""
    document = read_state(data_dir)
    if document is None or not runner_alive(document):
        return None
    socket = document.get("gateway_admin_socket")
    gateway: dict[str, Any] | None = None
    problem = None
    if socket:
        try:
            gateway = asyncio.run(GatewayLink(Path(socket)).state())
        except GatewayLinkError as error:
            problem = str(error)
    return {**document, "gateway": gateway, "gateway_problem": problem}


def _ago(at: object, now: float) -> str:
    if not isinstance(at, int | float):
        return "-"
    seconds = max(0.0, now - at)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def render(status: dict[str, Any], now: float | None = None) -> str:
    now = time.time() if now is None else now
    runner = status.get("runner") or {}
    header = ["SERVICE", "STATE", "READY", "PID", "PORT", "RESTARTS", "LAST RELOAD", "CAUSE"]
    rows = [header]
    for name, service in (status.get("services") or {}).items():
        reload = service.get("last_reload") or {}
        ready = service.get("ready")
        rows.append(
            [
                name,
                str(service.get("state", "?")),
                "-" if ready is None else ("yes" if ready else "no"),
                str(service.get("pid") or "-"),
                str(service.get("port") or "-"),
                str(service.get("restarts", 0)),
                _ago(reload.get("at"), now),
                str(reload.get("cause") or "-"),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        f"stack runner pid {runner.get('pid')}, up {_ago(runner.get('started_at'), now)[:-4]}"
        f"; gateway {status.get('gateway_url', '?')}"
    ]
    for row in rows:
        lines.append(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
        )
    gateway = status.get("gateway")
    if gateway is None:
        lines.append(f"gateway: no answer from its admin API ({status.get('gateway_problem')})")
        return "\n".join(lines)
    lines.append("gateway routes (weights in force):")
    for route, weights in (gateway.get("routes") or {}).items():
        split = ", ".join(f"{key} {weight}" for key, weight in weights.items())
        lines.append(f"  {route}: {split}")
    lines.append("gateway endpoints:")
    for key, endpoint in (gateway.get("endpoints") or {}).items():
        state = "ready" if endpoint.get("ready") else "NOT READY"
        ejected = endpoint.get("ejected_for_s") or 0
        if ejected:
            state += f", EJECTED for {ejected:g} s more (outlier detection)"
        lines.append(f"  {key} {endpoint.get('url')}: {state}")
    return "\n".join(lines)


def as_json(status: dict[str, Any]) -> str:
    return json.dumps(status, indent=2, sort_keys=True)


def no_stack(data_dir: Path) -> str:
    return f"no stack is running on {data_dir} (no live runner in {state_path(data_dir)})"
