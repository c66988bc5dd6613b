"""Benchmark POST /speech on text-to-speech v1 and v2, side by side in one run.

    uv run python bench/bench_speech_fronts.py [--requests 48] [--words 50] [--rounds 3]

Starts one tts-backend (eSpeak) and the two fronts on loopback, each front on
its own fresh audio directory, then for each cell of
{warm, cold} x {concurrency 1, 16} measures v1 and v2 back to back (which
goes first alternates between rounds; figures are medians over the rounds):

- ``warm``: the same few texts again and again (v2 serves its cached file; v1
  synthesizes each time, as designed). The texts are said once before timing.
- ``cold``: a text never said before on every request (a miss for v2 too).

Prints one line per figure (``name value``)::

    v1_warm_c1_p50_ms 41.20
    v1_warm_c1_p99_ms 55.31
    v1_warm_c1_errors 0
    ...
    ratio_warm_c1_p50 0.05      (v2 / v1)
    ratio_cold_c16_p99 1.02

Errors (any answer but 201, or a transport error) are counted, not raised; the
exit status is 1 if there were any.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
from testkit.fronts import running_front
from testkit.tts_backend import running_tts_backend

VERSIONS = ("v1", "v2")
MODES = ("warm", "cold")
CONCURRENCIES = (1, 16)
WARM_TEXTS = 8
UNUSED_BOOKS_URL = "http://127.0.0.1:9"  # the bench only sends texts


def sentence(words: int, tag: str) -> str:
    filler = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "a",
        "lazy",
        "dog",
        "while",
        "it",
        "reads",
    ]
    body = " ".join(itertools.islice(itertools.cycle(filler), words))
    return f"Bench text {tag}: {body}."


def texts_for(mode: str, words: int) -> Iterator[str]:
    if mode == "warm":
        yield from itertools.cycle([sentence(words, f"warm-{i}") for i in range(WARM_TEXTS)])
    while True:
        yield sentence(words, uuid.uuid4().hex)


async def run_cell(
    url: str, texts: Iterator[str], requests: int, concurrency: int
) -> tuple[list[float], int]:
    """Latencies (ms) of ``requests`` POSTs sent by ``concurrency`` workers; error count."""
    latencies: list[float] = []
    errors = 0
    remaining = requests
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120.0, limits=limits) as client:

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                body = {"text": next(texts)}
                start = time.perf_counter()
                try:
                    reply = await client.post("/speech", json=body)
                    ok = reply.status_code == 201
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - start) * 1000)
                if not ok:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def warm_up(urls: dict[str, str], words: int) -> None:
    with httpx.Client(timeout=120.0) as http:
        for version in VERSIONS:
            for i in range(WARM_TEXTS):
                reply = http.post(
                    f"{urls[version]}/speech", json={"text": sentence(words, f"warm-{i}")}
                )
                reply.raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=48, help="requests per cell")
    parser.add_argument("--words", type=int, default=50, help="words per text")
    parser.add_argument("--rounds", type=int, default=3, help="median over this many rounds")
    parser.add_argument("--backend-workers", type=int, default=2)
    args = parser.parse_args()

    total_errors = 0
    with (
        tempfile.TemporaryDirectory(prefix="bench-speech-") as tmp,
        running_tts_backend({"TTS_WORKERS": str(args.backend_workers)}) as backend,
        running_front("v1", UNUSED_BOOKS_URL, backend.address, Path(tmp) / "v1") as v1,
        running_front("v2", UNUSED_BOOKS_URL, backend.address, Path(tmp) / "v2") as v2,
    ):
        urls = {"v1": v1.url, "v2": v2.url}
        warm_up(urls, args.words)
        figures: dict[str, list[float]] = {}
        for round_number in range(args.rounds):
            # Alternate which version goes first, so drift in a shared CPU hits both alike.
            order = VERSIONS if round_number % 2 == 0 else VERSIONS[::-1]
            for mode, concurrency in itertools.product(MODES, CONCURRENCIES):
                for version in order:
                    latencies, errors = asyncio.run(
                        run_cell(
                            urls[version],
                            texts_for(mode, args.words),
                            args.requests,
                            concurrency,
                        )
                    )
                    total_errors += errors
                    name = f"{version}_{mode}_c{concurrency}"
                    figures.setdefault(f"{name}_p50_ms", []).append(percentile(latencies, 0.5))
                    figures.setdefault(f"{name}_p99_ms", []).append(percentile(latencies, 0.99))
                    figures.setdefault(f"{name}_errors", []).append(errors)
        medians = {name: statistics.median(values) for name, values in figures.items()}
        for name, value in medians.items():
            print(f"{name} {value:.0f}" if name.endswith("errors") else f"{name} {value:.2f}")
        for mode, concurrency in itertools.product(MODES, CONCURRENCIES):
            for stat in ("p50", "p99"):
                v1_value = medians[f"v1_{mode}_c{concurrency}_{stat}_ms"]
                v2_value = medians[f"v2_{mode}_c{concurrency}_{stat}_ms"]
                print(f"ratio_{mode}_c{concurrency}_{stat} {v2_value / v1_value:.3f}")
        print(f"errors_total {total_errors}")
    return 1 if total_errors else 0


if __name__ == "__main__":
    sys.exit(main())
