"""A long `stack up` under `client poll`: does the stack's memory stay bounded?

    uv run python bench/bench_soak.py [--minutes 30] [--rate 20] [--trace-retention 10m]

Starts the stack on free ports (a temporary data directory), runs
`client poll` through the gateway at ``--rate`` requests/s for ``--minutes``,
and samples the resident memory of the stack (the runner and every service's
process group) every ``--every`` seconds. Prints one line per sample
(``rss_mb_at_<s>s``) and then the figures the issue asks for:

- ``rss_mb_at_5min``: the stack's RSS five minutes in;
- ``rss_mb_end``: at the end;
- ``growth_after_5min_pct``: how much it grew from minute 5 to the end
  (goal: under 10 %);
- ``agent_requests_end`` / ``agent_oldest_s_end``: what the APM test agent
  keeps at the end (its retention window at work).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time

import httpx
from benchkit import stack_rss_mb
from servicekit.scripts import console_script
from testkit.devstack import free_stack_ports, started_pids, wait_for_output
from testkit.process import ServiceProcess


def _groups(stack: ServiceProcess) -> set[int]:
    """Every service's process group, restarted ones included (each child leads its own)."""
    return {pid for pids in started_pids(stack.output()).values() for pid in pids}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=20.0, help="client poll requests/s")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--trace-retention", default="10m")
    args = parser.parse_args()
    ports = free_stack_ports()
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        command = [
            console_script("stack"),
            "up",
            *ports.flags(),
            f"--data-dir={tmp}/data",
            f"--trace-retention={args.trace_retention}",
            "--no-reload",  # edits elsewhere in the tree must not restart what is measured
        ]
        with ServiceProcess(command, name="stack") as stack:
            wait_for_output(stack, r"Ctrl-C stops everything", timeout=180)
            seconds = args.minutes * 60
            poll = [console_script("client"), "poll", "--gateway", ports.gateway_url]
            poll += ["--rate", str(args.rate), "--duration", f"{int(seconds)}s"]
            samples: dict[float, float] = {}
            started = time.monotonic()
            with subprocess.Popen(poll, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
                while (elapsed := time.monotonic() - started) < seconds:
                    rss = stack_rss_mb(stack.pid, _groups(stack))
                    samples[elapsed] = rss
                    print(f"rss_mb_at_{elapsed:.0f}s {rss:.1f}", flush=True)
                    time.sleep(min(args.every, max(0.0, seconds - elapsed)))
            end = stack_rss_mb(stack.pid, _groups(stack))
            at_5 = min(samples.items(), key=lambda item: abs(item[0] - 300.0))[1]
            print(f"rss_mb_at_5min {at_5:.1f}")
            print(f"rss_mb_end {end:.1f}")
            print(f"growth_after_5min_pct {100.0 * (end - at_5) / at_5:.1f}")
            retained = httpx.get(
                f"{ports.gateway_url.rsplit(':', 1)[0]}:{ports.agent}/test/retention", timeout=30
            ).json()
            print(f"agent_requests_end {retained['requests']}")
            print(f"agent_oldest_s_end {retained['oldest_s']}")


if __name__ == "__main__":
    main()
