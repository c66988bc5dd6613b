"""Malformed bytes, broken framing and HEAD: 4xx with a message, never a 500."""

from __future__ import annotations

import json

import httpx
import pytest
from testkit.books import BooksServer
from testkit.process import raw_http

JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    "title",
    [
        b"a\xff",  # not UTF-8 at all
        b"a\xed\xa0\x80",  # an encoded surrogate
        b"a\xc0\xaf",  # an overlong encoding of "/"
    ],
)
def test_invalid_utf8_in_a_json_string_is_a_400(client: httpx.Client, title: bytes) -> None:
    body = b'{"title":"' + title + b'","author":"c"}'
    reply = client.post("/books", content=body, headers=JSON)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == "malformed_json"
    assert "UTF-8" in reply.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        "[" * 5000 + "]" * 5000,  # 10 KB: under the body limit, past the recursion limit
        '{"title":' + "[" * 1000 + "]" * 1000 + ',"author":"c"}',
    ],
)
def test_deeply_nested_json_is_a_400(client: httpx.Client, body: str) -> None:
    reply = client.post("/books", content=body, headers=JSON)
    assert reply.status_code == 400, reply.text
    assert reply.json() == {
        "error": "malformed_json",
        "detail": "request body is nested too deeply",
    }


def test_a_chunk_size_that_is_not_hex_is_a_400(books: BooksServer) -> None:
    status, _, body = raw_http(
        books.url,
        b"POST /books HTTP/1.1\r\nHost: books\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    )
    assert status.split()[1] == b"400", (status, body)
    assert json.loads(body)["error"] == "bad_request"


def test_a_body_shorter_than_its_content_length_is_a_400(books: BooksServer) -> None:
    status, _, body = raw_http(
        books.url,
        b"POST /books HTTP/1.1\r\nHost: books\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"title":',
        half_close=True,
    )
    assert status.split()[1] == b"400", (status, body)
    assert "declared length" in json.loads(body)["detail"]


def test_the_server_still_answers_after_broken_requests(client: httpx.Client) -> None:
    assert client.get("/books").status_code == 200


def test_head_is_answered_like_get_without_a_body(client: httpx.Client) -> None:
    created = client.post("/books", json={"title": "Head", "author": "Tail"})
    assert created.status_code == 201, created.text
    path = created.headers["location"]
    for url in ("/books", path, "/books?limit=1"):
        get = client.get(url)
        head = client.head(url)
        assert head.status_code == 200, (url, head.text)
        assert head.content == b""
        assert head.headers["content-length"] == get.headers["content-length"]
        assert head.headers["content-type"] == get.headers["content-type"]
    missing = client.head("/books/999999")
    assert missing.status_code == 404
    assert missing.content == b""
