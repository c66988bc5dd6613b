"""Real books, tts-backend and text-to-speech front processes for the front suites.

Module-scoped: each test module gets its own books database, backend, audio
directory and fronts (v1 and v2 sharing that directory, as on the cluster's
shared volume), so a module that stops or freezes a dependency cannot disturb
another.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from testkit.books import BooksServer, running_books
from testkit.fronts import FrontServer, running_front
from testkit.tts_backend import TtsBackend, running_tts_backend

VERSIONS = ("v1", "v2")
BOOK = {
    "title": "The Left Hand of Darkness",
    "author": "Ursula K. Le Guin",
    "description": "An envoy visits a planet whose people have no fixed sex.",
}


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BooksServer]:
    with running_books(tmp_path_factory.mktemp("books") / "books.db") as server:
        yield server


@pytest.fixture(scope="module")
def book(books: BooksServer) -> dict[str, Any]:
    reply = httpx.post(f"{books.url}/books", json=BOOK, timeout=10.0)
    assert reply.status_code == 201, reply.text
    created: dict[str, Any] = reply.json()
    return created


@pytest.fixture(scope="module")
def backend() -> Iterator[TtsBackend]:
    with running_tts_backend({"TTS_WORKERS": "1"}) as server:
        yield server


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="module")
def fronts(
    books: BooksServer, backend: TtsBackend, audio_dir: Path
) -> Iterator[dict[str, FrontServer]]:
    """v1 and v2 on one shared audio directory."""
    with (
        running_front("v1", books.url, backend.address, audio_dir) as v1,
        running_front("v2", books.url, backend.address, audio_dir) as v2,
    ):
        yield {"v1": v1, "v2": v2}


@pytest.fixture(scope="module", params=VERSIONS)
def front(request: pytest.FixtureRequest, fronts: dict[str, FrontServer]) -> FrontServer:
    return fronts[request.param]


@pytest.fixture
def http(front: FrontServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=front.url, timeout=30.0) as client:
        yield client
