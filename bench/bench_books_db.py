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

Also in the same run, on the same PostgreSQL server: ``peer_pg``, the plain
Litestar + asyncpg peer (``../shared/bench-anchor/pypeer/app.py`` with
``DB=postgresql://...``, on uvicorn, pinned like books; it stays outside the
project, in its own venv: ``$PEER_VENV``, default ``/tmp/peer-venv``, made with
pip when missing), and ``pgbench -S -M prepared -c 10`` (pinned to LOAD_CPU)
to show what the database itself serves. Then the ratios the goal is stated in::

    pgbench select_only tps 45000.0
    ratio postgresql_x1/sqlite_x1 get_one 0.36
    ratio postgresql_x1/peer_pg get_one 2.10
    cpu_ratio postgresql_x1/peer_pg get_one 2.40
    ...

``cpu_ratio`` is the same ratio from the CPU each request cost (server
processes plus PostgreSQL, ``cpu_us_per_request`` lines): what the req/s ratio
would be on a quiet machine where the one server core is the limit. On a
shared machine, whose load changes within a run, it is the steadier figure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from benchkit import (
    CONNECTIONS,
    SEED_BOOKS,
    anchor_dir,
    cpu_seconds,
    parse_wrk,
    spent,
    wrk_command,
)
from servicekit.scripts import console_script
from testkit.process import ServiceProcess, child_pids, free_port

if TYPE_CHECKING:
    from devstack.postgres import LocalPostgres

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


Served = tuple[list[str], list[int]]
"""Base URLs, and the pids whose CPU is the server's."""


@contextlib.contextmanager
def books_processes(env: dict[str, str], count: int, server_cpu: int) -> Iterator[Served]:
    """``count`` books processes pinned to ``server_cpu`` (access log and tracing off)."""
    with contextlib.ExitStack() as stack:
        bases, pids = [], []
        for _ in range(count):
            port = free_port()
            command = ["taskset", "-c", str(server_cpu), console_script("books")]
            environ = {
                **env,
                "PORT": str(port),
                "DD_TRACE_ENABLED": "false",
                "BOOKS_ACCESS_LOG": "false",
            }
            server = stack.enter_context(ServiceProcess(command, environ, name="books"))
            base = f"http://127.0.0.1:{port}"
            server.wait_http_ready(f"{base}/readyz")
            bases.append(base)
            pids.append(server.pid)
        yield bases, pids


PEER_PACKAGES = ("litestar", "asyncpg", "uvicorn")
PEER_POOL = "10"  # the peer's default, as books' BOOKS_DB_POOL_SIZE


def peer_venv() -> Path:
    """The peer's own venv (outside the project): ``$PEER_VENV``, made with pip when missing."""
    venv = Path(os.environ.get("PEER_VENV", "/tmp/peer-venv"))
    if not (venv / "bin" / "uvicorn").exists():
        print(f"# making the peer's venv {venv} (pip install {' '.join(PEER_PACKAGES)})")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "-q", *PEER_PACKAGES]
        subprocess.run(pip, check=True)
    return venv


@contextlib.contextmanager
def peer_process(database_url: str, server_cpu: int) -> Iterator[Served]:
    """The Litestar + asyncpg peer on uvicorn, pinned to ``server_cpu``; yields its base URL."""
    app_dir = anchor_dir() / "pypeer"
    if not (app_dir / "app.py").exists():
        raise SystemExit(f"no peer at {app_dir} (set BENCH_ANCHOR_DIR)")
    port = free_port()
    command = ["taskset", "-c", str(server_cpu), str(peer_venv() / "bin" / "uvicorn"), "app:app"]
    command += ["--app-dir", str(app_dir), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--no-access-log", "--log-level", "warning"]
    env = {"PEER": "litestar", "DB": database_url, "POOL": PEER_POOL}
    with ServiceProcess(command, env, name="peer") as peer:
        base = f"http://127.0.0.1:{port}"
        peer.wait_http_ready(f"{base}/healthz")
        yield [base], [peer.pid]


def pgbench_select_only(postgres: LocalPostgres, duration: int, load_cpu: int) -> float:
    """``pgbench -S -M prepared -c 10`` against ``postgres``: selects per second."""
    assert postgres.bin_dir is not None
    pgbench = str(postgres.bin_dir / "pgbench")
    where = ["-h", "127.0.0.1", "-p", str(postgres.port), "-U", "postgres"]
    postgres.create_database("pgbench")
    subprocess.run([pgbench, "-i", "-q", *where, "pgbench"], check=True, capture_output=True)
    command = ["taskset", "-c", str(load_cpu), pgbench, "-S", "-M", "prepared", "-c", "10"]
    command += ["-j", "1", "-T", str(duration), *where, "pgbench"]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    match = re.search(r"tps = ([\d.]+)", output)
    if match is None:
        raise SystemExit(f"error: no tps in pgbench's output:\n{output}")
    return float(match.group(1))


def pin_tree(pid: int, cpu: int) -> None:
    """Pin a process and its children (PostgreSQL's postmaster and backends) to ``cpu``."""
    for each in [pid, *child_pids(pid)]:
        subprocess.run(["taskset", "-a", "-cp", str(cpu), str(each)], capture_output=True)


def compare_backends(args: argparse.Namespace) -> None:
    from devstack.postgres import LocalPostgres

    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is required (apt-get install wrk util-linux)")
    figures: dict[tuple[str, str], float] = {}
    cpu_lines: list[str] = []
    cpu: dict[tuple[str, str], float] = {}
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
                ("peer_pg", {"DB": postgres.create_database("peer")}, 0),
            ]
            for label, env, count in setups:
                with contextlib.ExitStack() as stack:
                    if count:
                        served = books_processes(env, count, args.server_cpu)
                    else:
                        served = peer_process(env["DB"], args.server_cpu)
                    bases, pids = stack.enter_context(served)
                    seed(bases[0])
                    pin_tree(postgres.process.pid, args.server_cpu)  # backends included
                    postmaster = postgres.process.pid
                    for index, (scenario, _, script) in enumerate(scenarios(bases[0], lua)):
                        urls = [scenarios(base, lua)[index][1] for base in bases]
                        own = cpu_seconds(pids)
                        db = cpu_seconds([postmaster, *child_pids(postmaster)])
                        rps, p50, p99 = run_wrk_split(urls, args.duration, args.load_cpu, script)
                        requests = rps * args.duration
                        own_us = spent(own, cpu_seconds(pids)) / requests * 1e6
                        db_after = cpu_seconds([postmaster, *child_pids(postmaster)])
                        db_us = spent(db, db_after) / requests * 1e6
                        figures[label, scenario] = rps
                        cpu[label, scenario] = own_us + db_us
                        print(f"{label} {scenario} {rps:.1f} {p50:.2f} {p99:.2f}", flush=True)
                        cpu_lines.append(
                            f"cpu_us_per_request {label} {scenario} server {own_us:.1f}"
                            f" postgres {db_us:.1f}"
                        )
            pin_tree(postgres.process.pid, args.server_cpu)
            tps = pgbench_select_only(postgres, args.duration, args.load_cpu)
            print(f"pgbench select_only tps {tps:.1f}", flush=True)
    for line in cpu_lines:
        print(line)
    for scenario in ("get_one", "list", "post_mix"):
        for other in ("sqlite_x1", "peer_pg"):
            ratio = figures["postgresql_x1", scenario] / figures[other, scenario]
            print(f"ratio postgresql_x1/{other} {scenario} {ratio:.2f}")
            # What the ratio would be with one core each, from CPU per request (books
            # and PostgreSQL together): steadier than req/s when others load the machine.
            by_cpu = cpu[other, scenario] / cpu["postgresql_x1", scenario]
            print(f"cpu_ratio postgresql_x1/{other} {scenario} {by_cpu:.2f}")
