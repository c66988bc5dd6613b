"""One request of a polling user, and the state a user carries between them.

A user creates books, lists them, asks for speech of a book (or of a short
text), then downloads the audio it was given. The ids of created books and the
audio URLs of earlier answers are remembered (bounded), so later requests use
them. Every request ends in an :class:`~polling_client.tally.Outcome`; nothing
here raises for an HTTP or network failure, it becomes an error outcome.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from typing import Any
from urllib.parse import urljoin

import httpx

from polling_client.tally import Outcome
from polling_client.workload import Operation

VERSION_HEADER = "x-tts-version"
CANARY_HEADER = "x-canary"

_REMEMBERED = 256
_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "It was the best of times, it was the worst of times.",
    "Call me Ishmael.",
    "All happy families are alike.",
    "In a hole in the ground there lived a hobbit.",
    "It is a truth universally acknowledged.",
)
_AUTHORS = ("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra")


class ContractError(Exception):
    """An answer that does not follow the services' API contract."""


class UserJourney:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        gateway_url: str,
        books_url: str | None = None,
        canary: str | None = None,
    ) -> None:
        self._http = http
        self._gateway = gateway_url.rstrip("/")
        self._books = (books_url or gateway_url).rstrip("/")
        self._headers = {CANARY_HEADER: canary} if canary else {}
        self._book_ids: deque[int | str] = deque(maxlen=_REMEMBERED)
        self._audio_urls: deque[str] = deque(maxlen=_REMEMBERED)
        self._counter = itertools.count(1)

    async def run(self, operation: Operation) -> Outcome:
        """Perform ``operation``; an audio fetch with no audio yet is a GET /."""
        if operation is Operation.AUDIO and not self._audio_urls:
            operation = Operation.ROOT
        started = time.perf_counter()
        version: str | None = None
        status: int | None = None
        try:
            response = await self._send(operation)
            status = response.status_code
            version = response.headers.get(VERSION_HEADER) or None
            if not response.is_success:
                error: str | None = f"HTTP {status}"
            else:
                self._remember(operation, response)
                error = None
        except httpx.TimeoutException as exc:
            error = f"timeout ({type(exc).__name__})"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        except ContractError as exc:
            error = f"contract: {exc}"
        return Outcome(
            operation=operation,
            latency_s=time.perf_counter() - started,
            version=version,
            status=status,
            error=error,
        )

    async def _send(self, operation: Operation) -> httpx.Response:
        n = next(self._counter)
        if operation is Operation.ROOT:
            return await self._http.get(f"{self._gateway}/", headers=self._headers)
        if operation is Operation.CREATE_BOOK:
            book = {
                "title": f"Polling book {n}",
                "author": _AUTHORS[n % len(_AUTHORS)],
                "description": _SENTENCES[n % len(_SENTENCES)],
            }
            return await self._http.post(f"{self._books}/books", json=book)
        if operation is Operation.LIST_BOOKS:
            return await self._http.get(f"{self._books}/books", params={"limit": 20, "offset": 0})
        if operation is Operation.SPEECH:
            body: dict[str, Any]
            if self._book_ids and n % 2 == 0:
                body = {"book_id": self._book_ids[-1]}
            else:
                body = {"text": _SENTENCES[n % len(_SENTENCES)]}
            url = f"{self._gateway}/speech"
            return await self._http.post(url, json=body, headers=self._headers)
        return await self._http.get(self._audio_urls.popleft(), headers=self._headers)

    def _remember(self, operation: Operation, response: httpx.Response) -> None:
        if operation is Operation.CREATE_BOOK:
            book_id = _json_object(response).get("id")
            if not isinstance(book_id, int | str) or isinstance(book_id, bool):
                raise ContractError("POST /books answered without an id")
            self._book_ids.append(book_id)
        elif operation is Operation.SPEECH:
            audio_url = _json_object(response).get("audio_url")
            if not isinstance(audio_url, str) or not audio_url:
                raise ContractError("POST /speech answered without an audio_url")
            self._audio_urls.append(urljoin(self._gateway + "/", audio_url))
        elif operation is Operation.AUDIO and not response.content.startswith(b"RIFF"):
            raise ContractError(f"{response.request.url.path} is not a WAV file")


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise ContractError(f"{response.request.url.path} answered with no JSON body") from None
    if not isinstance(body, dict):
        raise ContractError(f"{response.request.url.path} answered with JSON that is not an object")
    return body
