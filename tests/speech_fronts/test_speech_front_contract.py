"""The HTTP contract of the text-to-speech front, run against v1 and against v2."""

from __future__ import annotations

import http.client
import re
from typing import Any

import httpx
import pytest
from pcm_wav import parse_wav
from speech_front.storage import audio_id
from testkit.books import BooksServer
from testkit.fronts import FrontServer

HEX64 = re.compile(r"[0-9a-f]{64}")
SPEECH_FIELDS = {"id", "audio_url", "duration_ms", "bytes", "voice", "engine", "version", "cached"}


def speak(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    reply = http.post("/speech", json=body)
    assert reply.status_code == 201, reply.text
    result: dict[str, Any] = reply.json()
    assert reply.headers["x-tts-version"] == result["version"]
    return result


def assert_json_error(reply: httpx.Response, status: int, front: FrontServer) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["x-tts-version"] == front.version
    assert reply.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = reply.json()
    assert body["error"] and body["detail"], body
    assert "Traceback" not in reply.text
    return body


def test_banner_names_the_version(http: httpx.Client, front: FrontServer) -> None:
    reply = http.get("/")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    assert reply.headers["x-tts-version"] == front.version
    assert front.version in reply.text
    assert ("canary" in reply.text) == (front.version == "v2")


def test_speech_from_text(http: httpx.Client, front: FrontServer) -> None:
    text = f"Plain text spoken by {front.version}."
    result = speak(http, {"text": text})
    assert set(result) == SPEECH_FIELDS
    assert HEX64.fullmatch(result["id"])
    assert result["id"] == audio_id("espeak", "", text)
    assert result["audio_url"] == f"/audio/{result['id']}.wav"
    assert result["version"] == front.version
    assert result["engine"] == "espeak"
    assert result["voice"] == "default"
    assert result["duration_ms"] > 0
    audio = http.get(result["audio_url"])
    assert audio.status_code == 200
    assert audio.headers["content-type"] == "audio/wav"
    assert int(audio.headers["content-length"]) == result["bytes"] == len(audio.content)
    info = parse_wav(audio.content)
    assert info is not None
    assert info.data_size == len(audio.content) - 44
    assert info.duration_ms == result["duration_ms"]


def test_speech_with_a_voice(http: httpx.Client) -> None:
    result = speak(http, {"text": "A named voice.", "voice": "en-gb"})
    assert result["voice"] == "en-gb"
    assert result["id"] == audio_id("espeak", "en-gb", "A named voice.")


def test_speech_from_a_book_says_title_by_author_and_description(
    http: httpx.Client, book: dict[str, Any]
) -> None:
    result = speak(http, {"book_id": book["id"]})
    expected = f"{book['title']} by {book['author']}. {book['description']}"
    assert result["id"] == audio_id("espeak", "", expected)
    assert http.get(result["audio_url"]).status_code == 200


def test_speech_from_a_book_without_description(http: httpx.Client, books: BooksServer) -> None:
    created = httpx.post(
        f"{books.url}/books", json={"title": "Dune", "author": "Frank Herbert"}, timeout=10.0
    ).json()
    result = speak(http, {"book_id": created["id"]})
    assert result["id"] == audio_id("espeak", "", "Dune by Frank Herbert.")


def test_unknown_book_is_404(http: httpx.Client, front: FrontServer) -> None:
    body = assert_json_error(http.post("/speech", json={"book_id": 987654}), 404, front)
    assert body["error"] == "book_not_found"


def test_unknown_voice_is_422_with_the_backend_message(
    http: httpx.Client, front: FrontServer
) -> None:
    reply = http.post("/speech", json={"text": "hello", "voice": "no-such-voice"})
    body = assert_json_error(reply, 422, front)
    assert body["error"] == "backend_rejected"
    assert "no-such-voice" in body["detail"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b"{}",
        b'{"book_id": 1, "text": "both"}',
        b'{"text": "   "}',
        b'{"text": 5}',
        b'{"book_id": "one"}',
        b'{"book_id": 0}',
        b'{"text": "hi", "colour": "red"}',
        b'{"text": "hi", "voice": "' + b"v" * 65 + b'"}',
    ],
)
def test_bad_bodies_are_400(http: httpx.Client, front: FrontServer, body: bytes) -> None:
    reply = http.post("/speech", content=body, headers={"content-type": "application/json"})
    assert_json_error(reply, 400, front)


def test_non_json_body_is_415(http: httpx.Client, front: FrontServer) -> None:
    reply = http.post("/speech", content=b"text=hi", headers={"content-type": "text/plain"})
    assert_json_error(reply, 415, front)


def test_body_over_the_limit_is_413(http: httpx.Client, front: FrontServer) -> None:
    reply = http.post("/speech", json={"text": "a" * 70_000})
    assert_json_error(reply, 413, front)


def test_text_over_the_limit_is_413(http: httpx.Client, front: FrontServer) -> None:
    reply = http.post("/speech", json={"text": "word " * 1001})
    body = assert_json_error(reply, 413, front)
    assert "5000" in body["detail"]


def test_every_response_carries_the_version(http: httpx.Client, front: FrontServer) -> None:
    for reply in (
        http.get("/no/such/route"),
        http.delete("/speech"),
        http.get(f"/audio/{'0' * 64}.wav"),
        http.get("/healthz"),
        http.get("/readyz"),
    ):
        assert reply.headers["x-tts-version"] == front.version, reply.url


def test_missing_audio_is_404(http: httpx.Client, front: FrontServer) -> None:
    body = assert_json_error(http.get(f"/audio/{'a' * 64}.wav"), 404, front)
    assert body["error"] == "audio_not_found"


@pytest.fixture(scope="module")
def stored(fronts: dict[str, FrontServer]) -> dict[str, Any]:
    """One stored file, made by v1, that both versions serve."""
    with httpx.Client(base_url=fronts["v1"].url, timeout=30.0) as client:
        return speak(client, {"text": "Ranges of bytes. " * 20})


def test_audio_etag_and_conditional_get(http: httpx.Client, stored: dict[str, Any]) -> None:
    first = http.get(stored["audio_url"])
    etag = first.headers["etag"]
    assert etag.startswith('"')
    assert first.headers["accept-ranges"] == "bytes"
    again = http.get(stored["audio_url"], headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-99", 0, 99), ("bytes=100-", 100, None), ("bytes=-10", -10, None)],
)
def test_audio_byte_ranges(
    http: httpx.Client, stored: dict[str, Any], header: str, start: int, end: int | None
) -> None:
    whole = http.get(stored["audio_url"]).content
    part = http.get(stored["audio_url"], headers={"range": header})
    assert part.status_code == 206
    expected = whole[start : None if end is None else end + 1]
    assert part.content == expected
    assert part.headers["content-length"] == str(len(expected))
    first = start if start >= 0 else len(whole) + start
    assert part.headers["content-range"] == (
        f"bytes {first}-{first + len(expected) - 1}/{len(whole)}"
    )


def test_range_outside_the_file_is_416(
    http: httpx.Client, stored: dict[str, Any], front: FrontServer
) -> None:
    reply = http.get(stored["audio_url"], headers={"range": f"bytes={stored['bytes']}-"})
    assert_json_error(reply, 416, front)
    assert reply.headers["content-range"] == f"bytes */{stored['bytes']}"


def test_malformed_or_multiple_ranges_get_the_whole_file(
    http: httpx.Client, stored: dict[str, Any]
) -> None:
    for header in ("bytes=abc", "items=0-1", "bytes=0-1,5-9", "bytes=9-1"):
        reply = http.get(stored["audio_url"], headers={"range": header})
        assert reply.status_code == 200, header
        assert len(reply.content) == stored["bytes"]


TRAVERSALS = [
    "/audio/../../etc/passwd",
    "/audio/..%2f..%2fetc%2fpasswd",
    "/audio/%2e%2e/%2e%2e/etc/passwd",
    "/audio/%2e%2e%2f%2e%2e%2fetc%2fpasswd.wav",
    "/audio/..",
    "/audio/%2e%2e",
    "/audio/..%5c..%5cwindows.wav",
    "/audio//etc/passwd",
    "/audio/%2fetc%2fpasswd",
    "/audio/%2Fetc%2Fpasswd.wav",
    "/audio/.probe.tmp",
    "/audio/" + "A" * 64 + ".wav",
    "/audio/" + "a" * 63 + ".wav",
    "/audio/" + "a" * 64 + ".wav%00.txt",
    "/audio/" + "a" * 64 + ".wav/..",
    "/audio/" + "a" * 64,
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_attempts_are_400_or_404(front: FrontServer, path: str) -> None:
    # http.client sends the path byte for byte: no client-side normalisation of ".." or %2e.
    connection = http.client.HTTPConnection("127.0.0.1", front.port, timeout=10)
    try:
        connection.request("GET", path)
        reply = connection.getresponse()
        body = reply.read()
    finally:
        connection.close()
    assert reply.status in (400, 404), (path, reply.status, body[:200])
    assert reply.getheader("x-tts-version") == front.version
    assert b"root:" not in body


def test_probes(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200, ready.text
