"""Benchmark the local gateway and the local stack.

    uv run python bench/bench_gateway.py [--duration 5] [--rounds 2]

Starts the whole stack (`stack up` on free ports, a fresh data dir), then, in the
same run, drives GET / with wrk at 16 connections, alternating rounds of:

- ``direct_v1``: straight to the text-to-speech v1 front;
- ``gateway_v1``: through the gateway pinned to v1 (``x-canary: v1``), same backend;
- ``gateway_split``: through the gateway with the 70/30 split;
- ``untraced_v1``: through a second gateway started with ``DD_TRACE_ENABLED=false``
  (same routes and upstreams), pinned to v1: what the gateway itself adds,
  without its Datadog spans.

wrk keeps 16 requests in flight, so it measures the saturated system (every
process shares the same cores; the slowest hop sets the pace). A second,
paced measurement sends the same GET / from 16 concurrent workers at a fixed
total rate (``--paced-rate``, default 400/s, well under saturation) and reports
``paced_*`` percentiles: the latency the gateway adds to a request when the
machine is not the bottleneck.

Prints one line per figure (``name value``), medians over the rounds::

    start_to_ready_s 4.8
    direct_v1_p50_ms 3.10
    ...
    gateway_added_p50_ms 0.80
    gateway_added_p99_ms 2.10
    rss_idle_mb 540.2
    rss_load_mb 560.9
    rss_poll_mb 590.0

RSS is the sum over the stack's processes (the runner and every process in the
services' process groups), at idle, during the wrk load and during a
`client poll` (the client itself not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from contextlib import ExitStack

from benchkit import check_wrk, stack_rss_mb, wrk_percentiles
from servicekit.scripts import console_script
from testkit.devstack import (
    free_stack_ports,
    started_pids,
    wait_for_output,
)
from testkit.process import ServiceProcess, free_port

CONNECTIONS = 16
SCENARIOS = ("direct_v1", "gateway_v1", "gateway_split", "untraced_v1")
PACED = ("direct_v1", "gateway_v1", "untraced_v1")


def wrk_percentiles_ms(url: str, seconds: int, headers: list[str]) -> dict[str, float]:
    """``{"50": ms, "99": ms}`` from ``wrk --latency``; exits on any non-2xx or socket error."""
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    for header in headers:
        command += ["-H", header]
    report = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    check_wrk(url, report)
    return wrk_percentiles(report)


async def _paced_latencies_ms(
    url: str, headers: dict[str, str], rate: float, seconds: float
) -> list[float]:
    import aiohttp

    latencies: list[float] = []
    interval = CONNECTIONS / rate
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker(offset: float) -> None:
            await asyncio.sleep(offset)
            loop = asyncio.get_running_loop()
            end = loop.time() + seconds
            next_at = loop.time()
            while next_at < end:
                started = time.perf_counter()
                async with session.get(url) as response:
                    await response.read()
                    if response.status != 200:
                        raise SystemExit(f"error: {url}: status {response.status}")
                latencies.append((time.perf_counter() - started) * 1000)
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - loop.time()))

        await asyncio.gather(*(worker(i * interval / CONNECTIONS) for i in range(CONNECTIONS)))
    return latencies[CONNECTIONS:]  # the first round opens the connections


def paced_percentiles(
    url: str, headers: dict[str, str], rate: float, seconds: float
) -> dict[str, float]:
    values = sorted(asyncio.run(_paced_latencies_ms(url, headers, rate, seconds)))
    return {
        "50": values[len(values) // 2],
        "99": values[min(len(values) - 1, int(len(values) * 0.99))],
    }


def print_latencies(runs: dict[str, list[dict[str, float]]], prefix: str = "") -> None:
    """Each scenario's median p50 and p99 over its rounds; then what the gateway adds.

    ``gateway_added_*`` (``untraced_added_*``): the median over the rounds of
    gateway_v1 (untraced_v1) minus direct_v1 of the same round.
    """
    for name, rounds in runs.items():
        for percentile in ("50", "99"):
            value = statistics.median(run[percentile] for run in rounds)
            print(f"{prefix}{name}_p{percentile}_ms {value:.2f}", flush=True)
    for label, scenario in (("gateway", "gateway_v1"), ("untraced", "untraced_v1")):
        for percentile in ("50", "99"):
            added = [
                g[percentile] - d[percentile]
                for g, d in zip(runs[scenario], runs["direct_v1"], strict=True)
            ]
            value = statistics.median(added)
            print(f"{prefix}{label}_added_p{percentile}_ms {value:.2f}", flush=True)


def rss_during(command: list[str], stack_pid: int, groups: set[int], after_s: float) -> float:
    """Start ``command``, sample the stack's RSS ``after_s`` seconds in, wait for it to end."""
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as load:
        time.sleep(after_s)
        rss = stack_rss_mb(stack_pid, groups)
        load.wait(timeout=120)
    return rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    parser.add_argument("--paced-rate", type=float, default=400.0, help="requests/s, paced run")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is required (apt-get install wrk)")

    ports = free_stack_ports()
    gateway = ports.gateway_url
    direct = f"http://127.0.0.1:{ports.tts_v1}"
    with tempfile.TemporaryDirectory(prefix="bench-stack-") as tmp:
        command = [console_script("stack"), "up", *ports.flags(), f"--data-dir={tmp}/data"]
        started = time.monotonic()
        with ExitStack() as stack_exit:
            stack = stack_exit.enter_context(ServiceProcess(command, name="stack"))
            wait_for_output(stack, r"Ctrl-C stops everything", timeout=120)
            print(f"start_to_ready_s {time.monotonic() - started:.2f}", flush=True)
            groups = {p for pids in started_pids(stack.output()).values() for p in pids}
            time.sleep(1.0)
            print(f"rss_idle_mb {stack_rss_mb(stack.pid, groups):.1f}", flush=True)

            untraced_port = free_port()
            untraced = ServiceProcess(
                ["local-gateway"],
                {
                    "PORT": str(untraced_port),
                    "GATEWAY_UPSTREAMS": (
                        f"books=http://127.0.0.1:{ports.books},"
                        f"text-to-speech/v1=http://127.0.0.1:{ports.tts_v1},"
                        f"text-to-speech/v2=http://127.0.0.1:{ports.tts_v2}"
                    ),
                },
                name="untraced-gateway",
            )
            stack_exit.enter_context(untraced)
            untraced.wait_http_ready(f"http://127.0.0.1:{untraced_port}/books")
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in SCENARIOS}
            targets = {
                "direct_v1": (direct + "/", []),
                "gateway_v1": (gateway + "/", ["x-canary: v1"]),
                "gateway_split": (gateway + "/", []),
                "untraced_v1": (f"http://127.0.0.1:{untraced_port}/", ["x-canary: v1"]),
            }
            load_rss: list[float] = []
            for _ in range(args.rounds):
                for name in SCENARIOS:
                    url, headers = targets[name]
                    if name == "gateway_split":
                        sampler = threading.Timer(
                            args.duration / 2,
                            lambda: load_rss.append(stack_rss_mb(stack.pid, groups)),
                        )
                        sampler.start()
                    runs[name].append(wrk_percentiles_ms(url, args.duration, headers))
            print_latencies(runs)
            print(f"rss_load_mb {max(load_rss):.1f}", flush=True)
            paced: dict[str, list[dict[str, float]]] = {name: [] for name in PACED}
            for _ in range(args.rounds):
                for name in PACED:
                    url, header_lines = targets[name]
                    paced_headers = dict(h.split(": ", 1) for h in header_lines)
                    paced[name].append(
                        paced_percentiles(url, paced_headers, args.paced_rate, args.duration)
                    )
            print_latencies(paced, prefix="paced_")
            poll = [console_script("client"), "poll", "--gateway", gateway]
            poll += ["--duration", "8s", "--rate", "10"]
            print(f"rss_poll_mb {rss_during(poll, stack.pid, groups, after_s=5.0):.1f}")


if __name__ == "__main__":
    main()
