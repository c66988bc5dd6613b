"""A small real HTTP server that follows the services' API contract, for tests.

Run as a process: ``python contract_server.py --port P [--role all|books|tts]
[--fail-every K]``. It answers like the gateway would: /books like the books
service; /, /speech and /audio like a text-to-speech front whose version
alternates deterministically (requests 0-2 of every 10 answered by v2, the rest
by v1: exactly a 70/30 split). Every K-th text-to-speech request fails with 503.
``GET /__stats`` tells what it received, including requests that broke the
contract (the test asserts there were none).
"""

from __future__ import annotations

import argparse
import struct

from aiohttp import web

STATS = web.AppKey("stats", dict)


def wav_bytes() -> bytes:
    samples = b"\x00\x00" * 160
    header = b"RIFF" + struct.pack("<I", 36 + len(samples)) + b"WAVEfmt "
    header += struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    return header + b"data" + struct.pack("<I", len(samples)) + samples


def make_app(role: str, fail_every: int) -> web.Application:
    app = web.Application()
    stats = {"tts": 0, "v1": 0, "v2": 0, "books": 0, "bad": 0, "failed": 0}
    app[STATS] = stats
    books: list[dict[str, object]] = []
    audio: set[str] = set()

    def version_headers() -> tuple[dict[str, str], bool]:
        index = stats["tts"]
        stats["tts"] += 1
        version = "v2" if index % 10 < 3 else "v1"
        stats[version] += 1
        failed = fail_every > 0 and (index + 1) % fail_every == 0
        stats["failed"] += failed
        return {"x-tts-version": version}, failed

    def bad(reason: str) -> web.Response:
        stats["bad"] += 1
        return web.json_response({"error": reason}, status=422)

    async def root(request: web.Request) -> web.Response:
        headers, failed = version_headers()
        if failed:
            return web.json_response({"error": "injected"}, status=503, headers=headers)
        return web.Response(text="text-to-speech contract server\n", headers=headers)

    async def speech(request: web.Request) -> web.Response:
        headers, failed = version_headers()
        body = await request.json()
        if not isinstance(body, dict) or (("book_id" in body) == ("text" in body)):
            return bad("give exactly one of book_id and text")
        known = {b["id"] for b in books}
        # With role tts the books live in another server: any id is taken.
        if role == "all" and "book_id" in body and body["book_id"] not in known:
            return bad("unknown book_id")
        if "text" in body and not (isinstance(body["text"], str) and body["text"].strip()):
            return bad("text must be a non-empty string")
        if failed:
            return web.json_response({"error": "injected"}, status=503, headers=headers)
        audio_id = f"a{stats['tts']}"
        audio.add(audio_id)
        answer = {
            "id": audio_id,
            "audio_url": f"/audio/{audio_id}.wav",
            "duration_ms": 10,
            "bytes": len(wav_bytes()),
            "voice": "en",
            "engine": "contract",
            "version": headers["x-tts-version"],
            "cached": False,
        }
        return web.json_response(answer, status=201, headers=headers)

    async def get_audio(request: web.Request) -> web.Response:
        headers, failed = version_headers()
        if request.match_info["audio_id"] not in audio:
            return bad("unknown audio")
        if failed:
            return web.json_response({"error": "injected"}, status=503, headers=headers)
        return web.Response(body=wav_bytes(), content_type="audio/wav", headers=headers)

    async def create_book(request: web.Request) -> web.Response:
        stats["books"] += 1
        body = await request.json()
        if not isinstance(body, dict) or not all(
            isinstance(body.get(key), str) and body[key] for key in ("title", "author")
        ):
            return bad("title and author are required strings")
        book = {"id": len(books) + 1, **body}
        books.append(book)
        return web.json_response(book, status=201)

    async def list_books(request: web.Request) -> web.Response:
        stats["books"] += 1
        limit = int(request.query.get("limit", "50"))
        offset = int(request.query.get("offset", "0"))
        return web.json_response(books[offset : offset + limit])

    async def get_stats(request: web.Request) -> web.Response:
        return web.json_response(stats)

    app.router.add_get("/__stats", get_stats)
    if role in ("all", "tts"):
        app.router.add_get("/", root)
        app.router.add_post("/speech", speech)
        app.router.add_get("/audio/{audio_id}.wav", get_audio)
    if role in ("all", "books"):
        app.router.add_post("/books", create_book)
        app.router.add_get("/books", list_books)
        app.router.add_get("/readyz", get_stats)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--role", choices=("all", "books", "tts"), default="all")
    parser.add_argument("--fail-every", type=int, default=0)
    args = parser.parse_args()
    web.run_app(
        make_app(args.role, args.fail_every),
        host="127.0.0.1",
        port=args.port,
        print=None,
        access_log=None,
    )


if __name__ == "__main__":
    main()
