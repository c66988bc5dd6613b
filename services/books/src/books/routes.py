"""HTTP routes of the books API.

Handlers are built around one store (closures, no per-request dependency
injection). Responses carry JSON produced by the store; the handler
annotations still name :class:`Book` so the OpenAPI schema describes it.
Reads are plain functions on SQLite (its reads are synchronous, see
:mod:`books.store`) and coroutines on PostgreSQL; the API is the same.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, cast

from litestar import Request, Response, Router, delete, get, patch, post, put
from litestar.exceptions import NotFoundException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.params import Parameter
from servicekit.http import JsonBytes, error_response

from books.models import MAX_ID, Book, BookIn, BookPatch
from books.store import AwaitedReads, Store, StoreFull, StoreUnavailable, reads_on_loop

log = logging.getLogger("books.routes")

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
RETRY_AFTER_S = 1

IdParam = Annotated[
    str,
    Parameter(
        title="id",
        description=f"book id: an integer from 1 to {MAX_ID}",
    ),
]
Limit = Annotated[
    int, Parameter(ge=1, le=MAX_LIMIT, description=f"page size, 1-{MAX_LIMIT} (default 100)")
]
Offset = Annotated[
    int, Parameter(ge=0, le=MAX_ID, description="number of books to skip (default 0)")
]


def parse_id(raw: str) -> int:
    """The ``{book_id}`` path segment as an id, or a 400 naming the problem."""
    if raw.isascii() and raw.isdigit() and len(raw) <= 19:
        value = int(raw)
        if 1 <= value <= MAX_ID:
            return value
    raise ValidationException(
        detail=f"path parameter 'id' must be an integer from 1 to {MAX_ID}, got {raw[:40]!r}"
    )


def _json(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response[Book]:
    return cast("Response[Book]", JsonBytes(body, status_code=status, headers=headers))


def _not_found(book_id: int) -> NotFoundException:
    return NotFoundException(detail=f"no book with id {book_id}")


def _found(book_id: int, body: bytes | None) -> Response[Book]:
    if body is None:
        raise _not_found(book_id)
    return _json(body)


def _read_handlers(store: Store) -> list[HTTPRouteHandler]:
    if reads_on_loop(store):  # SQLite: synchronous reads, on the loop

        @get("/", summary="List books ordered by id", sync_to_thread=False)
        def list_books(limit: Limit = DEFAULT_LIMIT, offset: Offset = 0) -> Response[list[Book]]:
            return cast("Response[list[Book]]", _json(store.list_json(limit, offset)))

        @get("/{book_id:str}", summary="Get a book", sync_to_thread=False)
        def get_book(book_id: IdParam) -> Response[Book]:
            parsed = parse_id(book_id)
            return _found(parsed, store.get_json(parsed))

        return [list_books, get_book]

    reads = cast(AwaitedReads, store)

    @get("/", summary="List books ordered by id")
    async def list_books_async(
        limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
    ) -> Response[list[Book]]:
        return cast("Response[list[Book]]", _json(await reads.list_json(limit, offset)))

    @get("/{book_id:str}", summary="Get a book")
    async def get_book_async(book_id: IdParam) -> Response[Book]:
        parsed = parse_id(book_id)
        return _found(parsed, await reads.get_json(parsed))

    return [list_books_async, get_book_async]


def book_routes(store: Store) -> Router:
    """``/books`` CRUD routes bound to ``store``."""

    @post("/", summary="Create a book")
    async def create_book(data: BookIn) -> Response[Book]:
        book_id, body = await store.create_json(data)
        return _json(body, 201, {"Location": f"/books/{book_id}"})

    @put("/{book_id:str}", summary="Replace a book")
    async def replace_book(book_id: IdParam, data: BookIn) -> Response[Book]:
        parsed = parse_id(book_id)
        body = await store.replace_json(parsed, data)
        if body is None:
            raise _not_found(parsed)
        return _json(body)

    @patch("/{book_id:str}", summary="Change some fields of a book")
    async def patch_book(book_id: IdParam, data: BookPatch) -> Response[Book]:
        parsed = parse_id(book_id)
        if data.is_empty():
            raise ValidationException(
                detail="PATCH body must set at least one of title, author, description"
            )
        body = await store.patch_json(parsed, data)
        if body is None:
            raise _not_found(parsed)
        return _json(body)

    @delete("/{book_id:str}", summary="Delete a book")
    async def delete_book(book_id: IdParam) -> None:
        parsed = parse_id(book_id)
        if not await store.delete(parsed):
            raise _not_found(parsed)

    handlers: list[HTTPRouteHandler] = [
        create_book,
        *_read_handlers(store),
        replace_book,
        patch_book,
        delete_book,
    ]
    return Router(
        path="/books",
        route_handlers=handlers,
        tags=["books"],
        exception_handlers={StoreUnavailable: _unavailable, StoreFull: _full},
    )


def _log_store_error(message: str, request: Request[Any, Any, Any], exc: Exception) -> None:
    log.warning(
        message,
        extra={
            "http.method": request.method,
            "http.url": request.url.path,
            "error.message": str(exc),
        },
    )


def _unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The database is down or too slow: 503 with ``Retry-After``, never a 500."""
    _log_store_error("database unavailable", request, exc)
    return error_response(
        503,
        "the database is unavailable; retry later",
        "database_unavailable",
        {"Retry-After": str(RETRY_AFTER_S)},
    )


def _full(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """No room for the write (disk full, file size limit): 507; nothing was written."""
    _log_store_error("database full", request, exc)
    return error_response(507, "no room left to store the book", "storage_full")
