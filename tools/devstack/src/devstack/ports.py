"""Is a loopback port free right now? (checked before anything is started)."""

from __future__ import annotations

import socket


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def port_problems(named_ports: dict[str, int]) -> list[str]:
    """One line per port that is taken or given to two services."""
    problems: list[str] = []
    seen: dict[int, str] = {}
    for name, port in named_ports.items():
        if port in seen:
            problems.append(f"port {port} is given to both {seen[port]} and {name}")
            continue
        seen[port] = name
        if port_in_use(port):
            problems.append(f"port {port} ({name}) is already in use")
    return problems
