"""Benchmark the books API side by side with the original system's (Go/Echo) books API.

    uv run python bench/bench_books.py [--duration 10] [--runs 3] [--server-cpu 0] [--load-cpu 1]

Absolute figures on a shared machine move by 2x from one day to the next, so the
figure that counts is the ratio to the anchor measured in the same run. Each
round starts, one after the other, three fresh servers pinned to SERVER_CPU:
the anchor (``../shared/bench-anchor/goapi``, in memory; built with its
``goapi/build.sh`` when missing), books with its access log on, and books with
``BOOKS_ACCESS_LOG=false`` (both on a new SQLite file, tracing off). Each is
driven by the anchor's own ``bench_server.sh``/``load.sh`` (seed 100 books, wrk
with 32 connections pinned to LOAD_CPU, 2 s warm-up) so the load is identical.
Rounds are interleaved so drift on the machine hits every server alike.

Prints, per round, ``server scenario rps p50_ms p99_ms``, then the medians over
the rounds and the ratios to the anchor::

    server scenario rps p50_ms p99_ms
    anchor get_one 31000.0 0.90 2.10
    books get_one 4800.0 6.20 9.10
    books_nolog get_one 5400.0 5.60 8.30
    ...
    ratio books get_one 0.155 p99_ms 9.10
    ratio books_nolog get_one 0.174 p99_ms 8.30

followed by ``rss_mb SERVER N`` (the server's RSS right after the load, median).
Scenarios: ``get_one`` (GET /books/1), ``list`` (GET /books, 100 books),
``post_mix`` (50 % POST /books, 50 % GET by id). Errors exit with status 1.

``--db postgres``: SQLite next to PostgreSQL with one and three books
processes, the Litestar + asyncpg peer and ``pgbench -S``, in the same run, with
CPU per request and the ratios of issue 24's goal (see ``bench/bench_books_db.py``;
no Go anchor needed).
The wrk and /proc helpers every bench script uses are in ``bench/benchkit.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchkit import anchor_dir as default_anchor_dir
from servicekit.scripts import console_script
from testkit.process import free_port

ANCHOR_BIN = Path("/tmp/bench-anchors/goapi")
SCENARIOS = ("get_one", "list", "post_mix")


def anchor_dir() -> Path:
    """The anchor's folder: ``$BENCH_ANCHOR_DIR`` or ``../shared/bench-anchor`` beside the repo."""
    folder = default_anchor_dir()
    if not (folder / "bench_server.sh").exists():
        raise SystemExit(f"no bench anchor at {folder} (set BENCH_ANCHOR_DIR)")
    return folder


def bench_server(
    folder: Path, command: list[str], port: int, env: dict[str, str], args: argparse.Namespace
) -> tuple[dict[str, tuple[float, float, float]], float]:
    """One run of the anchor's bench_server.sh: per scenario (rps, p50, p99), and RSS in MB."""
    script = [str(folder / "bench_server.sh"), "-r", "1", "-s", str(args.server_cpu)]
    script += ["-l", str(args.load_cpu), f"http://127.0.0.1:{port}", "--", *command]
    run_env = {**os.environ, **env, "DURATION": f"{args.duration}s"}
    done = subprocess.run(script, env=run_env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stdout, done.stderr, file=sys.stderr, sep="\n")
        raise SystemExit(f"error: {command[0]}: bench_server.sh exited {done.returncode}")
    results: dict[str, tuple[float, float, float]] = {}
    rss_kb = 0.0
    for line in done.stdout.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[0] in SCENARIOS:
            results[fields[0]] = (float(fields[1]), float(fields[2]), float(fields[3]))
        elif len(fields) == 2 and fields[0] == "rss_kb":
            rss_kb = float(fields[1])
    return results, rss_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", maxsplit=1)[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("--runs", type=int, default=3, help="rounds (medians are printed)")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument(
        "--db",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="postgres: SQLite x1, PostgreSQL x1 and x3, the asyncpg peer, pgbench"
        " (bench/bench_books_db.py)",
    )
    args = parser.parse_args()
    if args.db == "postgres":
        from bench_books_db import compare_backends

        compare_backends(args)
        return
    for tool in ("wrk", "taskset", "curl"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is required (apt-get install wrk util-linux curl)")
    folder = anchor_dir()
    anchor_bin = Path(os.environ.get("GOAPI_BIN", ANCHOR_BIN))
    if not anchor_bin.exists():
        subprocess.run([str(folder / "goapi" / "build.sh"), str(anchor_bin)], check=True)

    books = console_script("books")
    runs: dict[str, list[tuple[dict[str, tuple[float, float, float]], float]]] = {}
    print("server scenario rps p50_ms p99_ms", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-books-") as tmp:
        for round_ in range(args.runs):
            port = free_port()
            servers: list[tuple[str, list[str], dict[str, str]]] = [
                ("anchor", [str(anchor_bin), "-port", str(port)], {}),
            ]
            for name, access_log in (("books", "true"), ("books_nolog", "false")):
                env = {
                    "HOST": "127.0.0.1",
                    "PORT": str(port),
                    "BOOKS_DB_PATH": f"{tmp}/{name}-{round_}.db",
                    "BOOKS_ACCESS_LOG": access_log,
                    "DD_TRACE_ENABLED": "false",
                }
                servers.append((name, [books], env))
            for name, command, env in servers:
                results, rss = bench_server(folder, command, port, env, args)
                runs.setdefault(name, []).append((results, rss))
                for scenario in SCENARIOS:
                    rps, p50, p99 = results[scenario]
                    print(f"{name} {scenario} {rps:.1f} {p50:.2f} {p99:.2f}", flush=True)

    medians = {
        name: {
            scenario: tuple(statistics.median(r[0][scenario][i] for r in rounds) for i in range(3))
            for scenario in SCENARIOS
        }
        for name, rounds in runs.items()
    }
    print("# median server scenario rps p50_ms p99_ms")
    for name, by_scenario in medians.items():
        for scenario, (rps, p50, p99) in by_scenario.items():
            print(f"median {name} {scenario} {rps:.1f} {p50:.2f} {p99:.2f}")
    for name in ("books", "books_nolog"):
        for scenario in SCENARIOS:
            ratio = medians[name][scenario][0] / medians["anchor"][scenario][0]
            print(f"ratio {name} {scenario} {ratio:.3f} p99_ms {medians[name][scenario][2]:.2f}")
    for name, rounds in runs.items():
        print(f"rss_mb {name} {statistics.median(r[1] for r in rounds):.1f}")


if __name__ == "__main__":
    main()
