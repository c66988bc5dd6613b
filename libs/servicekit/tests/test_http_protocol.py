"""BrokenBodyMiddleware at the ASGI level: where the request body ends.

granian hands the body over as a first chunk marked ``more_body`` and then an
empty last one, each one a hand-off between its I/O thread and the event loop.
When the declared ``Content-Length`` has arrived, the middleware says so in
the first message, and the application never asks for the second.
"""

from __future__ import annotations

import asyncio

import pytest
from litestar.exceptions import ClientException
from litestar.types import Message, Receive, Scope, Send
from servicekit.http import BrokenBodyMiddleware


def http_scope(headers: list[tuple[bytes, bytes]]) -> Scope:
    return {  # type: ignore[return-value]
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": headers,
        "query_string": b"",
    }


def scripted_receive(messages: list[Message]) -> tuple[Receive, list[Message]]:
    """A receive that hands out ``messages`` in order and records what it handed out."""
    handed: list[Message] = []

    async def receive() -> Message:
        message = messages[len(handed)]
        handed.append(message)
        return message

    return receive, handed  # type: ignore[return-value]


async def read_body(scope: Scope, receive: Receive, send: Send) -> None:
    """The application: reads messages until ``more_body`` is false, as Litestar does."""
    chunks = []
    while True:
        message = await receive()
        assert message["type"] == "http.request"
        chunks.append(message["body"])
        if not message.get("more_body", False):
            break
    scope["read"] = b"".join(chunks)  # type: ignore[typeddict-unknown-key]


async def no_send(message: Message) -> None:
    raise AssertionError("nothing is sent in these tests")


def run(scope: Scope, receive: Receive) -> None:
    asyncio.run(BrokenBodyMiddleware(read_body)(scope, receive, no_send))  # type: ignore[arg-type]


def test_declared_length_reached_ends_the_body_without_asking_for_more() -> None:
    body = b'{"title":"T"}'
    scope = http_scope([(b"content-length", str(len(body)).encode())])
    # A second receive would be a disconnect: the app must never see it.
    receive, handed = scripted_receive(
        [
            {"type": "http.request", "body": body, "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    run(scope, receive)
    assert scope["read"] == body  # type: ignore[typeddict-item]
    assert len(handed) == 1


def test_body_in_several_chunks_ends_at_the_declared_length() -> None:
    scope = http_scope([(b"content-length", b"6")])
    receive, handed = scripted_receive(
        [
            {"type": "http.request", "body": b"abc", "more_body": True},
            {"type": "http.request", "body": b"def", "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    run(scope, receive)
    assert scope["read"] == b"abcdef"  # type: ignore[typeddict-item]
    assert len(handed) == 2


def test_body_shorter_than_declared_is_still_a_400() -> None:
    scope = http_scope([(b"content-length", b"100")])
    receive, _ = scripted_receive(
        [
            {"type": "http.request", "body": b"abc", "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    with pytest.raises(ClientException) as raised:
        run(scope, receive)
    assert raised.value.status_code == 400


@pytest.mark.parametrize(
    "headers",
    [
        [(b"transfer-encoding", b"chunked")],
        [(b"content-length", b"not-a-number")],
    ],
)
def test_without_a_usable_length_the_server_says_where_the_body_ends(
    headers: list[tuple[bytes, bytes]],
) -> None:
    scope = http_scope(headers)
    receive, handed = scripted_receive(
        [
            {"type": "http.request", "body": b"abc", "more_body": True},
            {"type": "http.request", "body": b"", "more_body": False},
        ]
    )
    run(scope, receive)
    assert scope["read"] == b"abc"  # type: ignore[typeddict-item]
    assert len(handed) == 2
