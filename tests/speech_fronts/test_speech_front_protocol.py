"""Edge inputs of the fronts: 4xx (or the whole file), never a 500; HEAD; conditionals."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from testkit.fronts import FrontServer
from testkit.process import raw_http

JSON = {"Content-Type": "application/json"}
HUGE = "9" * 5000  # past int()'s 4300-digit limit


@pytest.fixture(scope="module")
def stored(fronts: dict[str, FrontServer]) -> dict[str, Any]:
    """One stored file, made by v1, that both versions serve."""
    with httpx.Client(base_url=fronts["v1"].url, timeout=30.0) as client:
        reply = client.post("/speech", json={"text": "Heads and ranges. " * 10})
        assert reply.status_code == 201, reply.text
        result: dict[str, Any] = reply.json()
        return result


@pytest.mark.parametrize("text", [b"a\xff", b"a\xed\xa0\x80", b"a\xc0\xaf"])
def test_invalid_utf8_in_a_json_string_is_a_400(http: httpx.Client, text: bytes) -> None:
    reply = http.post("/speech", content=b'{"text":"' + text + b'"}', headers=JSON)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == "bad_request"


def test_deeply_nested_json_is_a_400(http: httpx.Client) -> None:
    reply = http.post("/speech", content="[" * 5000 + "]" * 5000, headers=JSON)
    assert reply.status_code == 400, reply.text


@pytest.mark.parametrize(
    ("request_bytes", "half_close"),
    [
        (b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", False),
        (b'Content-Length: 100\r\n\r\n{"text":', True),
    ],
    ids=["chunk-size-not-hex", "body-shorter-than-content-length"],
)
def test_broken_framing_is_a_400(
    front: FrontServer, request_bytes: bytes, half_close: bool
) -> None:
    status, headers, body = raw_http(
        front.url,
        b"POST /speech HTTP/1.1\r\nHost: tts\r\nContent-Type: application/json\r\n" + request_bytes,
        half_close=half_close,
    )
    assert status.split()[1] == b"400", (status, body)
    assert headers["x-tts-version"] == front.version
    assert json.loads(body)["error"] == "bad_request"


def test_a_range_with_a_5000_digit_number(http: httpx.Client, stored: dict[str, Any]) -> None:
    url = stored["audio_url"]
    size = stored["bytes"]
    whole = http.get(url, headers={"range": f"bytes=0-{HUGE}"})
    assert whole.status_code == 206, whole.text
    assert whole.headers["content-range"] == f"bytes 0-{size - 1}/{size}"
    past = http.get(url, headers={"range": f"bytes={HUGE}-"})
    assert past.status_code == 416, past.text
    backwards = http.get(url, headers={"range": f"bytes={HUGE}-1"})
    assert backwards.status_code == 200, backwards.text
    assert len(backwards.content) == size


def test_head_of_audio_banner_and_probes(http: httpx.Client, stored: dict[str, Any]) -> None:
    for path in (stored["audio_url"], "/", "/healthz"):
        get = http.get(path)
        head = http.head(path)
        assert head.status_code == 200, (path, head.text)
        assert head.content == b""
        for name in ("content-length", "content-type", "etag", "x-tts-version"):
            assert head.headers.get(name) == get.headers.get(name), (path, name)
    missing = http.head(f"/audio/{'a' * 64}.wav")
    assert missing.status_code == 404
    assert missing.content == b""


def test_if_none_match_star_is_a_304(http: httpx.Client, stored: dict[str, Any]) -> None:
    reply = http.get(stored["audio_url"], headers={"if-none-match": "*"})
    assert reply.status_code == 304
    assert reply.content == b""


def test_if_range_decides_between_the_range_and_the_whole_file(
    http: httpx.Client, stored: dict[str, Any]
) -> None:
    url = stored["audio_url"]
    etag = http.get(url).headers["etag"]
    matching = http.get(url, headers={"range": "bytes=0-9", "if-range": etag})
    assert matching.status_code == 206
    assert len(matching.content) == 10
    for stale in ('"not-the-etag"', f"W/{etag}", "Wed, 21 Oct 2015 07:28:00 GMT"):
        reply = http.get(url, headers={"range": "bytes=0-9", "if-range": stale})
        assert reply.status_code == 200, stale
        assert len(reply.content) == stored["bytes"]
