"""Books down for 10 s behind the real fronts, through the gateway configured from k8s/istio.

While books is down the fronts answer 503 + Retry-After (books_unavailable);
the DestinationRules' outlier detection must not turn that into Envoy's own
"no healthy upstream" (no Retry-After, and kept for baseEjectionTime after
books is back). Real books, tts-backend, tts-v1 and tts-v2 processes on
loopback; the gateway runs in this event loop.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from testkit.books import BooksServer, running_books
from testkit.devstack import serving_gateway
from testkit.fronts import running_front
from testkit.process import REPO_ROOT
from testkit.tts_backend import running_tts_backend

pytestmark = pytest.mark.slow

OUTAGE_S = 10.0
BOOK = {"title": "Solaris", "author": "Stanislaw Lem", "description": "An ocean that thinks."}


def _is_fronts_unavailable(reply: httpx.Response) -> bool:
    return (
        reply.status_code == 503
        and reply.headers.get("retry-after", "").isdigit()
        and reply.headers.get("x-tts-version") in {"v1", "v2"}
        and reply.json().get("error") == "books_unavailable"
    )


async def test_books_down_then_back_fronts_503_stay_visible_and_recovery_is_immediate(
    tmp_path: Path,
) -> None:
    with (
        running_books(tmp_path / "books.db") as books,
        running_tts_backend({"TTS_WORKERS": "1"}) as backend,
        running_front("v1", books.url, backend.address, tmp_path / "audio") as v1,
        running_front("v2", books.url, backend.address, tmp_path / "audio") as v2,
    ):
        upstreams = {"books": books.url, "text-to-speech/v1": v1.url, "text-to-speech/v2": v2.url}
        async with serving_gateway(REPO_ROOT / "k8s" / "istio", upstreams) as gateway:
            await _outage_and_recovery(gateway.url, books)


async def _outage_and_recovery(url: str, books: BooksServer) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        created = await client.post("/books", json=BOOK)
        assert created.status_code == 201, created.text
        speech = {"book_id": created.json()["id"]}
        warm = await client.post("/speech", json=speech)
        assert warm.status_code == 201, warm.text

        books.process.terminate()
        down_until = time.monotonic() + OUTAGE_S
        while_down: list[httpx.Response] = []
        while time.monotonic() < down_until:
            while_down.append(await client.post("/speech", json=speech))
            await asyncio.sleep(0.05)
        unexpected = [
            (r.status_code, r.text[:120]) for r in while_down if not _is_fronts_unavailable(r)
        ]
        assert not unexpected, (len(while_down), unexpected[:5])
        assert {r.headers["x-tts-version"] for r in while_down} == {"v1", "v2"}

        await asyncio.to_thread(books.start_again)  # returns once books' /readyz answers
        back_at = time.monotonic()
        # The very first request after books is back succeeds, on each version.
        first = await client.post("/speech", json=speech)
        assert first.status_code == 201, (first.status_code, first.text)
        after = [await client.post("/speech", json=speech) for _ in range(20)]
        assert {r.status_code for r in after} == {201}, [r.text[:120] for r in after]
        print(
            f"outage: {len(while_down)} requests, all fronts' 503 + Retry-After; "
            f"first 201 {time.monotonic() - back_at:.3f} s after books was ready"
        )
