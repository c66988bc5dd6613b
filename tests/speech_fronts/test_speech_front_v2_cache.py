"""v2's cache and single-flight, observed through its "backend synthesis" log lines.

Every backend synthesis a front starts writes one JSON log line
``{"message": "backend synthesis", "speech.id": <id>, "tts.rpc": ...}``;
:meth:`FrontServer.backend_syntheses` counts them.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from testkit.fronts import FrontServer


def fresh_text(words: int = 40) -> str:
    return f"Fresh text {uuid.uuid4().hex}. " + "Some more words to say. " * (words // 5)


async def post_many(url: str, body: dict[str, Any], count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as client:
        requests = [client.post("/speech", json=body) for _ in range(count)]
        return list(await asyncio.gather(*requests))


def test_miss_then_hit(fronts: dict[str, FrontServer]) -> None:
    v2 = fronts["v2"]
    text = fresh_text()
    with httpx.Client(base_url=v2.url, timeout=30.0) as http:
        miss = http.post("/speech", json={"text": text}).json()
        hit = http.post("/speech", json={"text": text}).json()
    assert miss["cached"] is False
    assert hit["cached"] is True
    assert {k: v for k, v in hit.items() if k != "cached"} == {
        k: v for k, v in miss.items() if k != "cached"
    }
    assert v2.backend_syntheses(miss["id"]) == 1


def test_hit_serves_a_file_v1_wrote_without_calling_the_backend(
    fronts: dict[str, FrontServer],
) -> None:
    text = fresh_text()
    with httpx.Client(timeout=30.0) as http:
        by_v1 = http.post(f"{fronts['v1'].url}/speech", json={"text": text}).json()
        by_v2 = http.post(f"{fronts['v2'].url}/speech", json={"text": text}).json()
    assert by_v1["id"] == by_v2["id"]
    assert by_v2["cached"] is True
    assert by_v2["bytes"] == by_v1["bytes"]
    assert fronts["v2"].backend_syntheses(by_v2["id"]) == 0


def test_v1_synthesizes_every_time(fronts: dict[str, FrontServer]) -> None:
    text = fresh_text()
    with httpx.Client(base_url=fronts["v1"].url, timeout=30.0) as http:
        results = [http.post("/speech", json={"text": text}).json() for _ in range(3)]
    assert [r["cached"] for r in results] == [False, False, False]
    assert fronts["v1"].backend_syntheses(results[0]["id"]) == 3


def test_concurrent_identical_requests_share_one_synthesis(
    fronts: dict[str, FrontServer],
) -> None:
    body = {"text": fresh_text(words=400)}
    replies = asyncio.run(post_many(fronts["v2"].url, body, 12))
    assert [r.status_code for r in replies] == [201] * 12, [r.text for r in replies]
    ids = {r.json()["id"] for r in replies}
    assert len(ids) == 1
    assert fronts["v2"].backend_syntheses(ids.pop()) == 1


def test_concurrent_identical_requests_to_v1_each_synthesize(
    fronts: dict[str, FrontServer],
) -> None:
    # The same measurement on v1 counts every request: the v2 count above is not vacuous.
    body = {"text": fresh_text(words=100)}
    replies = asyncio.run(post_many(fronts["v1"].url, body, 4))
    assert [r.status_code for r in replies] == [201] * 4
    assert fronts["v1"].backend_syntheses(replies[0].json()["id"]) == 4


def test_stored_file_is_a_complete_wav(fronts: dict[str, FrontServer]) -> None:
    text = fresh_text(words=200)
    with httpx.Client(base_url=fronts["v2"].url, timeout=30.0) as http:
        result = http.post("/speech", json={"text": text}).json()
        audio = http.get(result["audio_url"]).content
    path = fronts["v2"].audio_dir / f"{result['id']}.wav"
    assert path.read_bytes() == audio
    assert int.from_bytes(audio[4:8], "little") == len(audio) - 8
    assert int.from_bytes(audio[40:44], "little") == len(audio) - 44
    assert not list(fronts["v2"].audio_dir.glob(".*.tmp"))
