"""The running stack's state in one JSON file, for ``stack status`` (``docker compose ps``).

The runner rewrites ``DATA_DIR/.stack/state.json`` (atomically: a reader never
sees half a file) whenever a service changes state, and removes it when the
stack stops. A file left by a runner that was killed names a pid that is gone
(or reused: the runner's start time is in the file too), which ``stack status``
reports as "not running".
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

STATE_DIR = ".stack"
STATE_FILE = "state.json"


def state_path(data_dir: Path) -> Path:
    return data_dir / STATE_DIR / STATE_FILE


def weights_path(data_dir: Path) -> Path:
    """The canary weights the gateway follows (devstack.gateway.weights; `client canary`)."""
    return data_dir / STATE_DIR / "weights.json"


def process_start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks since boot).

    None if there is no such process, or it has exited and is not reaped yet.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its end.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def is_same_process(pid: int, start_ticks: int | None) -> bool:
    """``pid`` is alive and is the process that had this start time (not a reused pid)."""
    return start_ticks is not None and process_start_ticks(pid) == start_ticks


class StackState:
    def __init__(self, path: Path, extra: dict[str, Any] | None = None) -> None:
        self.path = path
        self.pid = os.getpid()
        self.extra = dict(extra or {})
        self.started_at = time.time()

    def save(self, services: Mapping[str, Mapping[str, Any]]) -> None:
        """Write each service's status (the supervisor's ``Child.status()``) with the runner's."""
        document = {
            "runner": {
                "pid": self.pid,
                "start_ticks": process_start_ticks(self.pid),
                "started_at": self.started_at,
            },
            **self.extra,
            "services": {name: dict(status) for name, status in services.items()},
            "saved_at": time.time(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{self.pid}.tmp")
        temporary.write_text(json.dumps(document, indent=1, sort_keys=True))
        os.replace(temporary, self.path)

    def remove(self) -> None:
        try:
            document = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return
        if document.get("runner", {}).get("pid") == self.pid:
            self.path.unlink(missing_ok=True)


def read_state(data_dir: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(state_path(data_dir).read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def runner_alive(document: dict[str, Any]) -> bool:
    runner = document.get("runner") or {}
    pid = runner.get("pid")
    return isinstance(pid, int) and is_same_process(pid, runner.get("start_ticks"))
