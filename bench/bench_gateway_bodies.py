"""The local gateway's memory while big request bodies pass through it.

    uv run python bench/bench_gateway_bodies.py [--clients 20] [--body-mib 15]

Starts books and the local gateway (the stack's routes, text-to-speech
destinations unreachable: only /books is used), then sends ``--clients``
concurrent ``POST /books`` of ``--body-mib`` MiB each through the gateway (the
issue 13 reproduction: books refuses them with 413). Prints, one per line
(``name value``): the answers' statuses and the gateway's RSS before, its peak
(VmHWM) and after.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import tempfile
from pathlib import Path

import httpx
from benchkit import status_mb
from testkit.books import running_books
from testkit.process import ServiceProcess, find_repo_root, free_port


async def _post_all(url: str, clients: int, body: bytes) -> collections.Counter[str]:
    async with httpx.AsyncClient(timeout=120.0) as client:

        async def post() -> str:
            try:
                reply = await client.post(
                    f"{url}/books", content=body, headers={"Content-Type": "application/json"}
                )
            except httpx.HTTPError as error:
                return type(error).__name__
            return str(reply.status_code)

        return collections.Counter(await asyncio.gather(*(post() for _ in range(clients))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--body-mib", type=int, default=15)
    args = parser.parse_args()
    body = b'{"title":"' + b"x" * (args.body_mib * 1024 * 1024) + b'","author":"a"}'
    with tempfile.TemporaryDirectory() as data, running_books(Path(data) / "books.db") as books:
        port = free_port()
        dead = f"http://127.0.0.1:{free_port()}"
        env = {
            "PORT": str(port),
            "GATEWAY_ISTIO_DIR": str(find_repo_root() / "k8s" / "istio"),
            "GATEWAY_UPSTREAMS": (
                f"books={books.url},text-to-speech/v1={dead},text-to-speech/v2={dead}"
            ),
            "DD_TRACE_ENABLED": "false",
        }
        url = f"http://127.0.0.1:{port}"
        with ServiceProcess(["local-gateway"], env, name="local-gateway") as gateway:
            gateway.wait_http_ready(f"{url}/books")
            before = status_mb(gateway.pid, "VmRSS")
            statuses = asyncio.run(_post_all(url, args.clients, body))
            print(f"statuses {' '.join(f'{k}x{v}' for k, v in sorted(statuses.items()))}")
            print(f"gateway_rss_before_mb {before:.1f}")
            print(f"gateway_rss_peak_mb {status_mb(gateway.pid, 'VmHWM'):.1f}")
            print(f"gateway_rss_after_mb {status_mb(gateway.pid, 'VmRSS'):.1f}")


if __name__ == "__main__":
    main()
