"""What the bench scripts share: wrk runs and their figures, and /proc process figures.

A module, not a script: the ``bench_*.py`` scripts import it (``python
bench/<script>.py`` puts ``bench/`` on the import path) and never each other's
helpers, so no two scripts import each other.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from testkit.devstack import live_processes_in_groups

# The books load, as the anchor's load.sh runs it (bench_books, bench_books_db, tracing).
CONNECTIONS = 32
SEED_BOOKS = 100
# The Go anchor and the asyncpg peer: ../shared/bench-anchor beside the repository.
ANCHOR_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "bench-anchor"

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_PERCENTILE = re.compile(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_WRK_PROBLEMS = ("Non-2xx or 3xx responses", "Socket errors")


def anchor_dir() -> Path:
    """The anchor's folder: ``$BENCH_ANCHOR_DIR`` or ``../shared/bench-anchor`` beside the repo."""
    return Path(os.environ.get("BENCH_ANCHOR_DIR", ANCHOR_DIR))


# ---- wrk ----


def wrk_command(
    url: str, duration: int, load_cpu: int, script: Path | None, connections: int = CONNECTIONS
) -> list[str]:
    """One wrk thread pinned to ``load_cpu``, with ``--latency`` (and a Lua script if any)."""
    command = ["taskset", "-c", str(load_cpu), "wrk", "-t1", f"-c{connections}", f"-d{duration}s"]
    return [*command, "--latency", *(["-s", str(script)] if script else []), url]


def check_wrk(url: str, report: str) -> None:
    """Exit with status 1 when wrk saw a non-2xx/3xx answer or a socket error."""
    for problem in _WRK_PROBLEMS:
        if problem in report:
            print(f"\nerror: {url}: {problem}:\n{report}", file=sys.stderr)
            raise SystemExit(1)


def wrk_percentiles(report: str) -> dict[str, float]:
    """``{"50": ms, "75": ms, "90": ms, "99": ms}`` from wrk's ``--latency`` distribution."""
    return {p: float(v) * _UNITS_MS[unit] for p, v, unit in _PERCENTILE.findall(report)}


def parse_wrk(url: str, report: str) -> tuple[float, float, float]:
    """requests/s, p50 and p99 (ms) from wrk's --latency output; exit on any error."""
    check_wrk(url, report)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", report)
    percentiles = wrk_percentiles(report)
    if rps is None or not {"50", "99"} <= percentiles.keys():
        print(f"\nerror: {url}: unexpected wrk output:\n{report}", file=sys.stderr)
        raise SystemExit(1)
    return float(rps.group(1)), percentiles["50"], percentiles["99"]


def run_wrk(
    url: str, duration: int, load_cpu: int, script: Path | None
) -> tuple[float, float, float]:
    """One pinned wrk run: requests/s, p50 and p99 (ms)."""
    command = wrk_command(url, duration, load_cpu, script)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return parse_wrk(url, output)


def pinned_wrk_args(doc: str | None) -> argparse.Namespace:
    """--duration/--server-cpu/--load-cpu, after checking wrk and taskset are installed."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n", maxsplit=1)[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is required (apt-get install wrk util-linux)")
    return args


# ---- /proc ----

_TICK = os.sysconf("SC_CLK_TCK")


def status_mb(pid: int, field: str = "VmRSS") -> float:
    """A memory line of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``...) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for pid {pid}")


def total_rss_mb(pids: Iterable[int]) -> float:
    """The summed RSS of the processes still alive among ``pids`` (MB)."""
    total = 0.0
    for pid in set(pids):
        try:
            total += status_mb(pid)
        except (OSError, RuntimeError):  # gone, or a zombie without memory lines
            continue
    return total


def stack_rss_mb(stack_pid: int, groups: set[int]) -> float:
    """The RSS of ``stack up`` and every live process of its children's process groups (MB)."""
    return total_rss_mb([stack_pid, *live_processes_in_groups(groups)])


def cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """User + system CPU of each process (all its threads) still alive."""
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / _TICK
    return seconds


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two :func:`cpu_seconds` readings (new processes from zero)."""
    return sum(after[pid] - before.get(pid, 0.0) for pid in after)
