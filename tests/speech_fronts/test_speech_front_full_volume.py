"""A full audio volume: the front says it is not ready, and says why."""

from __future__ import annotations

from pathlib import Path

import httpx
from testkit.fronts import FrontServer


def test_a_full_audio_volume_makes_the_front_not_ready(front: FrontServer, tmp_path: Path) -> None:
    # RLIMIT_FSIZE of 16 KiB: no file can grow past 16 KiB, as on a full volume.
    with (
        front.another(tmp_path, wait_ready=False, prefix=("prlimit", "--fsize=16384")) as full,
        httpx.Client(base_url=full.url, timeout=30.0) as http,
    ):
        speech = http.post("/speech", json={"text": "Nowhere to put this."})
        assert speech.status_code == 507, speech.text
        ready = http.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert "audio volume is full" in ready.json()["detail"]
        assert http.get("/healthz").status_code == 200  # alive: not a reason to restart
        assert list(tmp_path.iterdir()) == []
