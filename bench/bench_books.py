"""Benchmark the books API: server pinned to one core, wrk on another.

    uv run python bench/bench_books.py [--duration 10] [--server-cpu 0] [--load-cpu 1]

Starts ``books`` on a fresh SQLite file under ``taskset -c SERVER_CPU``, seeds
100 books, then drives it with wrk (32 connections, one thread, pinned to
LOAD_CPU) and prints one line per scenario::

    scenario rps p50_ms p99_ms
    get_by_id 11548.7 2.53 7.14
    list_100 ...
    mix_post_get ...

followed by ``rss_idle_mb N`` and ``rss_after_load_mb N`` (the server's RSS).
Non-2xx answers or socket errors are reported on stderr and make the exit status 1.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from testkit.process import ServiceProcess, console_script, free_port

CONNECTIONS = 32
SEED_BOOKS = 100

MIX_LUA = """
local n = 0
local body = '{"title":"bench","author":"wrk","description":"written by the mix scenario"}'
local headers = {["Content-Type"] = "application/json"}
request = function()
  n = n + 1
  if n % 2 == 0 then
    return wrk.format("POST", "/books", headers, body)
  end
  return wrk.format("GET", "/books/" .. (math.floor(n / 2) % 100 + 1))
end
"""

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def to_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def run_wrk(
    url: str, duration: int, load_cpu: int, script: Path | None
) -> tuple[float, float, float]:
    command = ["taskset", "-c", str(load_cpu), "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration}s"]
    command += ["--latency", *(["-s", str(script)] if script else []), url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    for problem in ("Non-2xx or 3xx responses", "Socket errors"):
        if problem in output:
            print(f"\nerror: {url}: {problem}:\n{output}", file=sys.stderr)
            raise SystemExit(1)
    return rps, p50, p99


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


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


def main() -> None:
    args = pinned_wrk_args(__doc__)

    with tempfile.TemporaryDirectory(prefix="bench-books-") as tmp:
        port = free_port()
        env = {"PORT": str(port), "BOOKS_DB_PATH": f"{tmp}/books.db"}
        command = ["taskset", "-c", str(args.server_cpu), console_script("books")]
        lua = Path(tmp) / "mix.lua"
        lua.write_text(MIX_LUA)
        with ServiceProcess(command, env, name="books") as server:
            base = f"http://127.0.0.1:{port}"
            server.wait_http_ready(f"{base}/readyz")
            with httpx.Client(base_url=base) as http:
                for i in range(SEED_BOOKS):
                    body = {"title": f"Book {i}", "author": f"Author {i}", "description": "x" * 200}
                    http.post("/books", json=body).raise_for_status()
            # The server process is taskset's exec'd child: same pid.
            idle = rss_mb(server.pid)
            print("scenario rps p50_ms p99_ms")
            scenarios = [
                ("get_by_id", f"{base}/books/1", None),
                ("list_100", f"{base}/books?limit=100", None),
                ("mix_post_get", base, lua),
            ]
            for name, url, script in scenarios:
                rps, p50, p99 = run_wrk(url, args.duration, args.load_cpu, script)
                print(f"{name} {rps:.1f} {p50:.2f} {p99:.2f}", flush=True)
            print(f"rss_idle_mb {idle:.1f}")
            print(f"rss_after_load_mb {rss_mb(server.pid):.1f}")


if __name__ == "__main__":
    main()
