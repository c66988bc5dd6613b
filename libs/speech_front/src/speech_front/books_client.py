"""The books API as the fronts see it: one pooled HTTP client, a deadline per call."""

from __future__ import annotations

import logging

import httpx
import msgspec

from speech_front import spans
from speech_front.errors import BookNotFound, BooksUnavailable

log = logging.getLogger("speech_front.books")


class Book(msgspec.Struct):
    id: int
    title: str
    author: str
    description: str | None = None


def book_text(book: Book) -> str:
    """What is said for a book: its title, "by", its author, and its description if any."""
    text = f"{book.title.strip()} by {book.author.strip()}."
    if book.description and book.description.strip():
        text += " " + book.description.strip()
    return text


_decoder = msgspec.json.Decoder(Book)


class BooksClient:
    def __init__(self, base_url: str, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    async def get_book(self, book_id: int) -> Book:
        with spans.book_fetch(book_id):
            return await self._get_book(book_id)

    async def _get_book(self, book_id: int) -> Book:
        try:
            response = await self._client.get(f"/books/{book_id}")
        except httpx.TimeoutException as exc:
            raise BooksUnavailable(f"books API did not answer within {self._timeout_s}s") from exc
        except httpx.HTTPError as exc:
            raise BooksUnavailable(f"books API unreachable ({type(exc).__name__})") from exc
        if response.status_code == 404:
            raise BookNotFound(f"book {book_id} not found")
        if response.status_code != 200:
            raise BooksUnavailable(f"books API answered {response.status_code}")
        try:
            return _decoder.decode(response.content)
        except msgspec.DecodeError as exc:
            raise BooksUnavailable(f"books API sent an unexpected body ({exc})") from exc

    async def aclose(self) -> None:
        await self._client.aclose()
