"""Tracing overhead on books: GET by id with tracing off vs on, in the same run.

    uv run python bench/bench_tracing_overhead.py [--duration 10] [--server-cpu 0] [--load-cpu 1]

Starts the Datadog APM test agent (pinned with wrk to LOAD_CPU), then books
twice on the same seeded SQLite file, pinned to SERVER_CPU: once with
``DD_TRACE_ENABLED=false``, once traced to the agent. Drives ``GET /books/1``
with the same wrk settings as ``bench/bench_books.py`` and prints::

    tracing scenario rps p50_ms p99_ms
    off get_by_id 11548.7 2.53 7.14
    on get_by_id 9012.3 3.20 9.01
    ratio_rps_on_off 0.78
    ratio_p99_on_off 1.26
    agent_spans 123456

(``agent_spans``: spans the agent received in the traced run, to show the
traced run really exported.) Goal: ``ratio_rps_on_off >= 0.7``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
from benchkit import SEED_BOOKS, cpu_seconds, pinned_wrk_args, run_wrk
from servicekit.scripts import console_script
from testkit.process import ServiceProcess, free_port
from testkit.testagent import ApmTestAgent


def seed(base: str) -> None:
    with httpx.Client(base_url=base) as http:
        for i in range(SEED_BOOKS):
            body = {"title": f"Book {i}", "author": f"Author {i}", "description": "x" * 200}
            http.post("/books", json=body).raise_for_status()


def measure(
    env: dict[str, str], db: Path, server_cpu: int, load_cpu: int, duration: int
) -> tuple[float, float, float, float]:
    port = free_port()
    env = {**env, "PORT": str(port), "BOOKS_DB_PATH": str(db)}
    command = ["taskset", "-c", str(server_cpu), console_script("books")]
    with ServiceProcess(command, env, name="books") as server:
        base = f"http://127.0.0.1:{port}"
        server.wait_http_ready(f"{base}/readyz")
        if not db.with_suffix(".seeded").exists():
            seed(base)
            db.with_suffix(".seeded").touch()
        # Warm-up (connections, caches, first traces) outside the measurement.
        run_wrk(f"{base}/books/1", 1, load_cpu, None)
        cpu_before = cpu_seconds([server.pid])[server.pid]
        rps, p50, p99 = run_wrk(f"{base}/books/1", duration, load_cpu, None)
        cpu_us_per_request = (
            (cpu_seconds([server.pid])[server.pid] - cpu_before) / (rps * duration) * 1e6
        )
        return rps, p50, p99, cpu_us_per_request


def main() -> None:
    args = pinned_wrk_args(__doc__)

    with tempfile.TemporaryDirectory(prefix="bench-tracing-") as tmp:
        agent = ApmTestAgent()
        agent.process.command[:0] = ["taskset", "-c", str(args.load_cpu)]
        with agent:
            db = Path(tmp) / "books.db"
            off_env = {"DD_TRACE_ENABLED": "false"}
            on_env = {**agent.tracer_env(), "DD_TRACE_WRITER_INTERVAL_SECONDS": "1"}
            print("tracing scenario rps p50_ms p99_ms cpu_us_per_req")
            results = {}
            for label, env in (("off", off_env), ("on", on_env)):
                agent.start_session()
                rps, p50, p99, cpu = measure(env, db, args.server_cpu, args.load_cpu, args.duration)
                results[label] = (rps, p99, cpu)
                print(f"{label} get_by_id {rps:.1f} {p50:.2f} {p99:.2f} {cpu:.0f}", flush=True)
            spans = len(agent.spans())
        print(f"ratio_rps_on_off {results['on'][0] / results['off'][0]:.2f}")
        print(f"ratio_p99_on_off {results['on'][1] / results['off'][1]:.2f}")
        # CPU per request is steadier than req/s on a shared machine; off/on is
        # the throughput ratio a CPU-bound server would see.
        print(f"ratio_cpu_off_on {results['off'][2] / results['on'][2]:.2f}")
        print(f"agent_spans {spans}")


if __name__ == "__main__":
    main()
