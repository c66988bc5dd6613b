"""The HTTP contract both fronts serve, written once.

``GET /`` banner, ``POST /speech``, ``GET /audio/<id>.wav`` (ETag, ranges),
``GET /healthz`` and ``GET /readyz``. Handlers find the per-process pieces in
``app.state.front`` (a :class:`Front`, built by the app's lifespan).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.enums import MediaType
from litestar.response import Stream
from litestar.types import ControllerRouterHandler
from servicekit.http import ReadinessCheck, error_response

from speech_front.books_client import BooksClient, book_text
from speech_front.errors import AudioNotFound, BadRequest, TooLarge
from speech_front.ranges import Unsatisfiable, parse_range
from speech_front.settings import FrontSettings
from speech_front.storage import StoredAudio, is_audio_id
from speech_front.strategy import Produced, SpeechDeps, SpeechJob, SynthesisStrategy

_READ_CHUNK = 64 * 1024
_MAX_VOICE_CHARS = 64
_MAX_BOOK_ID = 2**63 - 1


@dataclass
class Front:
    """Per-process state: settings, the pooled clients, the version's strategy."""

    settings: FrontSettings
    banner: str
    books: BooksClient
    deps: SpeechDeps
    strategy: SynthesisStrategy


class SpeechRequest(msgspec.Struct, forbid_unknown_fields=True):
    book_id: int | None = None
    text: str | None = None
    voice: str | None = None


class SpeechResponse(msgspec.Struct):
    id: str
    audio_url: str
    duration_ms: int
    bytes: int
    voice: str
    engine: str
    version: str
    cached: bool


_request_decoder = msgspec.json.Decoder(SpeechRequest)


def _front(state: State) -> Front:
    front: Front = state.front
    return front


def decode_speech_request(body: bytes) -> SpeechRequest:
    try:
        request = _request_decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        # msgspec raises UnicodeDecodeError for invalid UTF-8 inside a string.
        raise BadRequest(
            'body must be JSON {"book_id": <int>} or {"text": "...", "voice": "..."}: ' + str(exc)
        ) from exc
    if (request.book_id is None) == (request.text is None):
        raise BadRequest('give exactly one of "book_id" and "text"')
    if request.book_id is not None and not 1 <= request.book_id <= _MAX_BOOK_ID:
        raise BadRequest(f'"book_id" must be from 1 to {_MAX_BOOK_ID}')
    if request.voice is not None and len(request.voice) > _MAX_VOICE_CHARS:
        raise BadRequest(f'"voice" must be at most {_MAX_VOICE_CHARS} characters')
    return request


async def _job_for(request: SpeechRequest, front: Front) -> SpeechJob:
    settings = front.settings
    if request.book_id is not None:
        text = book_text(await front.books.get_book(request.book_id))
    else:
        text = (request.text or "").strip()
        if not text:
            raise BadRequest('"text" must not be empty')
    if len(text) > settings.max_text_chars:
        raise TooLarge(
            f"text is {len(text)} characters; at most {settings.max_text_chars} can be spoken"
        )
    voice = (request.voice or "").strip() or settings.tts_voice
    return SpeechJob(text=text, voice=voice, engine=settings.tts_engine)


def _speech_response(produced: Produced, version: str) -> SpeechResponse:
    audio = produced.audio
    return SpeechResponse(
        id=audio.id,
        audio_url=f"/audio/{audio.id}.wav",
        duration_ms=audio.duration_ms,
        bytes=audio.size,
        voice=produced.job.voice or "default",
        engine=produced.job.engine,
        version=version,
        cached=produced.cached,
    )


@get("/", media_type=MediaType.TEXT, sync_to_thread=False)
def banner(state: State) -> str:
    return _front(state).banner + "\n"


@post("/speech", status_code=201)
async def create_speech(request: Request[Any, Any, Any], state: State) -> SpeechResponse:
    front = _front(state)
    job = await _job_for(decode_speech_request(await request.body()), front)
    produced = await front.strategy.produce(job)
    return _speech_response(produced, front.settings.version)


@get("/audio/{name:str}", media_type="audio/wav")
async def get_audio(name: str, request: Request[Any, Any, Any], state: State) -> Response[Any]:
    stem, dot, extension = name.rpartition(".")
    if not dot or extension != "wav" or not is_audio_id(stem):
        raise BadRequest("audio id must be 64 lowercase hex digits followed by .wav")
    store = _front(state).deps.store
    opened = await asyncio.to_thread(store.open, stem)
    if opened is None:
        raise AudioNotFound(f"no audio with id {stem}")
    handle, audio = opened
    try:
        return _audio_response(handle, audio, request)
    except BaseException:
        handle.close()
        raise


def _audio_response(
    handle: BinaryIO, audio: StoredAudio, request: Request[Any, Any, Any]
) -> Response[Any]:
    headers = {"ETag": audio.etag, "Accept-Ranges": "bytes", "Cache-Control": "no-cache"}
    if_none_match = _etags(request.headers.get("if-none-match"))
    if audio.etag in if_none_match or "*" in if_none_match:
        handle.close()
        return Response(b"", status_code=304, headers=headers)
    range_header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() != audio.etag:
        # RFC 9110 13.1.5: a validator that does not match (strongly; a date never
        # does, no Last-Modified is sent) means "send the whole file".
        range_header = None
    try:
        wanted = parse_range(range_header, audio.size)
    except Unsatisfiable:
        handle.close()
        return error_response(
            416,
            f"range outside the file's {audio.size} bytes",
            "range_not_satisfiable",
            {**headers, "Content-Range": f"bytes */{audio.size}"},
        )
    if wanted is None:
        start, length, status = 0, audio.size, 200
    else:
        start, length, status = wanted.start, wanted.length, 206
        headers["Content-Range"] = wanted.content_range(audio.size)
    headers["Content-Length"] = str(length)
    return Stream(
        _read_chunks(handle, start, length),
        status_code=status,
        headers=headers,
        media_type="audio/wav",
    )


def _etags(header: str | None) -> set[str]:
    if not header:
        return set()
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}


async def _read_chunks(handle: BinaryIO, start: int, length: int) -> AsyncIterator[bytes]:
    try:
        await asyncio.to_thread(handle.seek, start)
        remaining = length
        while remaining > 0:
            chunk = await asyncio.to_thread(handle.read, min(_READ_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


def readiness_check(current_front: Callable[[], Front]) -> ReadinessCheck:
    """Ready when the audio directory takes a short file and the backend says SERVING.

    A full audio volume makes the front not ready: every synthesis would end in
    507, so it cannot do its job (libs/speech_front/README.md, Routes: `GET /readyz`).
    """

    async def check() -> None:
        front = current_front()
        store_problem, backend_ok = await asyncio.gather(
            asyncio.to_thread(front.deps.store.writability_problem),
            front.deps.backend.is_serving(front.settings.ready_timeout_s),
        )
        problems = []
        if store_problem is not None:
            problems.append(f"audio directory {front.deps.store.root}: {store_problem}")
        if not backend_ok:
            problems.append(f"backend at {front.deps.backend.address} is not SERVING")
        if problems:
            raise RuntimeError("; ".join(problems))

    return check


SPEECH_ROUTES: list[ControllerRouterHandler] = [banner, create_speech, get_audio]
