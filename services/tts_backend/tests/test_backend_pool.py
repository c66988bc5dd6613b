"""The eSpeak worker pool in-process: every worker it starts, it stops."""

from __future__ import annotations

import multiprocessing

from tts_backend.engines.espeak_pool import EspeakPool


def _live_workers() -> list[str]:
    return [p.name for p in multiprocessing.active_children() if p.name.startswith("espeak-worker")]


async def test_close_stops_every_worker_whatever_order_they_started_in() -> None:
    # Workers load concurrently and finish loading in any order; each must keep
    # its own slot, or close() misses one and the parent's exit waits forever.
    pool = EspeakPool(4)
    try:
        await pool.start()
        assert sorted(_live_workers()) == [f"espeak-worker-{i}" for i in range(4)]
        assert await pool.synthesize("Hello.", "en-us", 175)
        await pool.close()
        assert _live_workers() == []
    finally:
        for process in multiprocessing.active_children():  # a missed worker ignores SIGTERM
            process.kill()
