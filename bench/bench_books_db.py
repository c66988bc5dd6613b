"""books on SQLite next to books on PostgreSQL, one and three processes, in one run.

    uv run python bench/bench_books.py --db postgres [--duration 10] [--server-cpu 0] [--load-cpu 1]

A fresh local PostgreSQL (``devstack.postgres``, fsync off) and every books
process are pinned to SERVER_CPU, wrk to LOAD_CPU (32 connections, one
thread). Setups: ``sqlite_x1`` (the baseline), ``postgresql_x1`` and
``postgresql_x3``; each seeds 100 books and runs the scenarios ``get_one``
(GET /books/1), ``list`` (GET /books?limit=100) and ``post_mix`` (50 % POST,
50 % GET by id)::

    setup scenario rps p50_ms p99_ms
    sqlite_x1 get_one ...
    postgresql_x3 post_mix ...

With three processes the 32 connections are split over three wrk runs at
once, one per process (no load balancer in the way): rps is their sum, p50 and
p99 the worst of the three. All processes share SERVER_CPU, so three replicas
show the cost of sharing one database, not extra CPU. Errors exit with status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
from bench_books import CONNECTIONS, SEED_BOOKS, parse_wrk, wrk_command
from testkit.process import ServiceProcess, child_pids, console_script, free_port

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


def run_wrk_split(
    urls: list[str], duration: int, load_cpu: int, script: Path | None
) -> tuple[float, float, float]:
    """CONNECTIONS spread over one wrk per URL, all at once: summed rps, worst p50/p99."""
    shares = [CONNECTIONS // len(urls) + (i < CONNECTIONS % len(urls)) for i in range(len(urls))]
    runs = [
        subprocess.Popen(
            wrk_command(url, duration, load_cpu, script, share), stdout=subprocess.PIPE, text=True
        )
        for url, share in zip(urls, shares, strict=True)
    ]
    results = [parse_wrk(url, run.communicate()[0]) for url, run in zip(urls, runs, strict=True)]
    return sum(r[0] for r in results), max(r[1] for r in results), max(r[2] for r in results)


def seed(base: str) -> None:
    with httpx.Client(base_url=base) as http:
        for i in range(SEED_BOOKS):
            body = {"title": f"Book {i}", "author": f"Author {i}", "description": "x" * 200}
            http.post("/books", json=body).raise_for_status()


def scenarios(base: str, lua: Path) -> list[tuple[str, str, Path | None]]:
    return [
        ("get_one", f"{base}/books/1", None),
        ("list", f"{base}/books?limit=100", None),
        ("post_mix", base, lua),
    ]


@contextlib.contextmanager
def books_processes(env: dict[str, str], count: int, server_cpu: int) -> Iterator[list[str]]:
    """``count`` books processes pinned to ``server_cpu``; yields their base URLs."""
    with contextlib.ExitStack() as stack:
        bases = []
        for _ in range(count):
            port = free_port()
            command = ["taskset", "-c", str(server_cpu), console_script("books")]
            environ = {**env, "PORT": str(port), "DD_TRACE_ENABLED": "false"}
            server = stack.enter_context(ServiceProcess(command, environ, name="books"))
            base = f"http://127.0.0.1:{port}"
            server.wait_http_ready(f"{base}/readyz")
            bases.append(base)
        yield bases


def pin_tree(pid: int, cpu: int) -> None:
    """Pin a process and its children (PostgreSQL's postmaster and backends) to ``cpu``."""
    for each in [pid, *child_pids(pid)]:
        subprocess.run(["taskset", "-a", "-cp", str(cpu), str(each)], capture_output=True)


def compare_backends(args: argparse.Namespace) -> None:
    from devstack.postgres import LocalPostgres

    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is required (apt-get install wrk util-linux)")
    print("setup scenario rps p50_ms p99_ms", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-books-db-") as name:
        tmp = Path(name)
        tmp.chmod(0o755)  # as root, the server runs as an unprivileged user
        lua = tmp / "mix.lua"
        lua.write_text(MIX_LUA)
        with LocalPostgres(tmp / "postgres", free_port(), durable=False) as postgres:
            assert postgres.process is not None
            setups = [
                ("sqlite_x1", {"BOOKS_DB_PATH": str(tmp / "books.db")}, 1),
                ("postgresql_x1", {"BOOKS_DATABASE_URL": postgres.create_database("bench1")}, 1),
                ("postgresql_x3", {"BOOKS_DATABASE_URL": postgres.create_database("bench3")}, 3),
            ]
            for label, env, count in setups:
                with books_processes(env, count, args.server_cpu) as bases:
                    seed(bases[0])
                    pin_tree(postgres.process.pid, args.server_cpu)  # backends included
                    for index, (scenario, _, script) in enumerate(scenarios(bases[0], lua)):
                        urls = [scenarios(base, lua)[index][1] for base in bases]
                        rps, p50, p99 = run_wrk_split(urls, args.duration, args.load_cpu, script)
                        print(f"{label} {scenario} {rps:.1f} {p50:.2f} {p99:.2f}", flush=True)
