"""Benchmark the polling client: pacing accuracy and its own ceiling.

    uv run python bench/bench_client.py [--duration 5]

Runs ``client poll`` (the real console script) against the contract server of
the client's tests (a small aiohttp server that answers like the gateway, so
the client, not the services, is what is measured) and prints one line per
figure::

    pacing requested_rps=50 achieved_rps=49.9 ratio=0.998
    pacing requested_rps=200 ...
    unpaced concurrency=32 rps=1234.5 p50_ms=... p99_ms=...
    client_peak_rss_mb 61.2

``ratio`` is achieved/requested over the run (1.0 = exact pacing). Client and
server share the machine: read the unpaced figure as a lower bound.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from typing import Any

from servicekit.scripts import console_script
from testkit.process import REPO_ROOT, ServiceProcess, free_port

SERVER = REPO_ROOT / "services" / "client" / "tests" / "contract_server.py"


def poll(url: str, *flags: str) -> dict[str, Any]:
    result = subprocess.run(
        [console_script("client"), "poll", "--gateway", url, "--format", "json", *flags],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "DD_TRACE_ENABLED": "false"},
    )
    if result.returncode != 0:
        sys.exit(f"client poll failed ({result.returncode}): {result.stderr.strip()}")
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per pacing run")
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with ServiceProcess([sys.executable, str(SERVER), "--port", str(port)], name="server") as srv:
        srv.wait_http_ready(f"{url}/__stats")
        for rate in (50, 200):
            report = poll(url, "--rate", str(rate), "--duration", f"{args.duration}s")
            achieved = float(report["requests"]) / float(report["elapsed_s"])
            print(
                f"pacing requested_rps={rate} achieved_rps={achieved:.1f}"
                f" ratio={achieved / rate:.3f}"
            )
        report = poll(url, "--rate", "0", "--count", "3000", "--concurrency", "32")
        rps = float(report["requests"]) / float(report["elapsed_s"])
        v1 = report["versions"]["v1"]
        print(
            f"unpaced concurrency=32 rps={rps:.1f}"
            f" p50_ms={v1['p50_ms']:.2f} p99_ms={v1['p99_ms']:.2f}"
        )
        # Only the client runs have been waited for so far: this is their peak RSS.
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        print(f"client_peak_rss_mb {peak_kb / 1024:.1f}")


if __name__ == "__main__":
    main()
