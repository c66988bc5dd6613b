"""Dependencies down, frozen or too slow, and an unusable audio volume.

The documented answers: 503 with ``Retry-After`` and a JSON error when books or
the backend are unreachable or past their deadline (so the mesh may retry),
recovery as soon as they are back; 503 when the audio directory is not
writable, 507 when the volume is full, with no file left behind.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from testkit.books import BooksServer
from testkit.fronts import FrontServer, running_front
from testkit.process import frozen
from testkit.tts_backend import TtsBackend

RETRY_AFTER_S = "2"
# Short deadlines for the shared fronts (frozen dependencies); generous ones for the
# fronts of the storage tests, whose long text must never hit a deadline.
FRONT_ENV = {"BOOKS_TIMEOUT_S": "1", "TTS_TIMEOUT_S": "2", "RETRY_AFTER_S": RETRY_AFTER_S}
PATIENT_ENV = {"TTS_TIMEOUT_S": "120", "RETRY_AFTER_S": RETRY_AFTER_S}
LONG_TEXT = ("A long sentence for the speech synthesizer to read aloud slowly. " * 75)[:4900]


@pytest.fixture(scope="module")
def fronts(
    books: BooksServer, backend: TtsBackend, audio_dir: Path
) -> Iterator[dict[str, FrontServer]]:
    with (
        running_front("v1", books.url, backend.address, audio_dir, env=FRONT_ENV) as v1,
        running_front("v2", books.url, backend.address, audio_dir, env=FRONT_ENV) as v2,
    ):
        yield {"v1": v1, "v2": v2}


def fresh() -> dict[str, str]:
    return {"text": f"Never said before: {uuid.uuid4().hex}."}


def assert_unavailable(reply: httpx.Response, error: str, front: FrontServer) -> str:
    assert reply.status_code == 503, reply.text
    assert reply.headers["retry-after"] == RETRY_AFTER_S
    assert reply.headers["x-tts-version"] == front.version
    body: dict[str, Any] = reply.json()
    assert body["error"] == error
    detail: str = body["detail"]
    return detail


def created_within(http: httpx.Client, body: dict[str, Any], seconds: float) -> httpx.Response:
    """POST until 201, as a client honouring Retry-After would; the last reply."""
    deadline = time.monotonic() + seconds
    while True:
        reply = http.post("/speech", json=body)
        if reply.status_code == 201 or time.monotonic() > deadline:
            return reply
        time.sleep(0.2)


def test_books_down_is_503_then_recovers(
    http: httpx.Client, front: FrontServer, books: BooksServer, book: dict[str, Any]
) -> None:
    books.process.terminate()
    try:
        reply = http.post("/speech", json={"book_id": book["id"]})
        assert "unreachable" in assert_unavailable(reply, "books_unavailable", front)
    finally:
        books.start_again()
    reply = created_within(http, {"book_id": book["id"]}, 10)
    assert reply.status_code == 201, reply.text


def test_books_past_the_deadline_is_503_then_recovers(
    http: httpx.Client, front: FrontServer, books: BooksServer, book: dict[str, Any]
) -> None:
    with frozen(books.process.pid):
        reply = http.post("/speech", json={"book_id": book["id"]})
    assert "within 1.0s" in assert_unavailable(reply, "books_unavailable", front)
    reply = created_within(http, {"book_id": book["id"]}, 10)
    assert reply.status_code == 201, reply.text


def test_backend_down_is_503_and_not_ready_then_recovers(
    http: httpx.Client, front: FrontServer, backend: TtsBackend
) -> None:
    backend.process.terminate()
    try:
        reply = http.post("/speech", json=fresh())
        assert "unreachable" in assert_unavailable(reply, "backend_unavailable", front)
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert "not SERVING" in ready.json()["detail"]
    finally:
        backend.start_again()
    reply = created_within(http, fresh(), 15)
    assert reply.status_code == 201, reply.text
    assert http.get("/readyz").status_code == 200


def test_backend_past_the_deadline_is_503_then_recovers(
    http: httpx.Client, front: FrontServer, backend: TtsBackend
) -> None:
    with frozen(backend.process.pid):
        reply = http.post("/speech", json=fresh())
    assert "within 2.0s" in assert_unavailable(reply, "backend_unavailable", front)
    reply = created_within(http, fresh(), 10)
    assert reply.status_code == 201, reply.text


def test_synthesis_longer_than_the_deadline_is_503_and_leaves_no_file(
    front: FrontServer, tmp_path: Path
) -> None:
    env = {**PATIENT_ENV, "TTS_TIMEOUT_S": "0.02"}
    with (
        front.another(tmp_path, env=env) as hasty,
        httpx.Client(base_url=hasty.url, timeout=30.0) as http,
    ):
        reply = http.post("/speech", json={"text": LONG_TEXT})
        assert "within 0.02s" in assert_unavailable(reply, "backend_unavailable", hasty)
    assert list(tmp_path.iterdir()) == []


def test_audio_dir_not_writable_is_503(front: FrontServer, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    audio = blocker / "audio"
    with (
        front.another(audio, env=PATIENT_ENV, wait_ready=False) as broken,
        httpx.Client(base_url=broken.url, timeout=30.0) as http,
    ):
        reply = http.post("/speech", json=fresh())
        assert "not writable" in assert_unavailable(reply, "storage_unavailable", broken)
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert "audio directory" in ready.json()["detail"]


def test_audio_volume_full_is_507_and_leaves_no_partial_file(
    front: FrontServer, tmp_path: Path
) -> None:
    # RLIMIT_FSIZE makes every write past 256 KiB fail (EFBIG), as a full volume would.
    with (
        front.another(tmp_path, env=PATIENT_ENV, prefix=("prlimit", "--fsize=262144")) as cramped,
        httpx.Client(base_url=cramped.url, timeout=30.0) as http,
    ):
        reply = http.post("/speech", json={"text": LONG_TEXT})
        assert reply.status_code == 507, reply.text
        assert reply.json()["error"] == "storage_full"
        assert "full" in reply.json()["detail"]
        assert list(tmp_path.iterdir()) == []
        small = http.post("/speech", json={"text": "Short enough."})
        assert small.status_code == 201, small.text
