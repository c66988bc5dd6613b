"""The Litestar app of a text-to-speech front, parameterised by version and strategy."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.datastructures import MutableScopeHeaders
from litestar.types import BeforeMessageSendHookHandler, Message, Scope
from servicekit.http import healthz_route, json_api, readiness_route

from speech_front.backend_client import BackendClient
from speech_front.books_client import BooksClient
from speech_front.errors import SpeechError, speech_error_handler
from speech_front.routes import SPEECH_ROUTES, Front, readiness_check
from speech_front.settings import FrontSettings
from speech_front.storage import AudioStore
from speech_front.strategy import SpeechDeps, StrategyFactory

log = logging.getLogger("speech_front")

VERSION_HEADER = "x-tts-version"


def version_header(version: str) -> BeforeMessageSendHookHandler:
    """A hook that stamps ``x-tts-version`` on every response, errors and 404s included."""

    async def add_header(message: Message, scope: Scope) -> None:
        if message["type"] == "http.response.start":
            MutableScopeHeaders.from_message(message)[VERSION_HEADER] = version

    return add_header


def create_speech_app(
    settings: FrontSettings, *, banner: str, strategy_factory: StrategyFactory
) -> Litestar:
    """A front: shared routes, one books client and one gRPC channel per process."""
    fronts: list[Front] = []  # the one Front of this app, once its lifespan has started

    @asynccontextmanager
    async def clients(app: Litestar) -> AsyncIterator[None]:
        store = AudioStore(settings.audio_dir)
        try:
            await asyncio.to_thread(store.ensure_dir)
            await asyncio.to_thread(store.sweep_stale_temp_files)
        except SpeechError as exc:
            # Not fatal: /readyz reports it and requests get a 503 until it is fixed.
            log.warning("audio directory unusable: %s", exc.message)
        books = BooksClient(settings.books_url, settings.books_timeout_s)
        backend = BackendClient(settings.backend_addr, settings.tts_timeout_s)
        deps = SpeechDeps(backend=backend, store=store)
        front = Front(settings, banner, books, deps, strategy_factory(deps))
        app.state.front = front
        fronts.append(front)
        try:
            yield
        finally:
            await books.aclose()
            await backend.close()
            fronts.remove(front)

    speech = Router(
        "/",
        route_handlers=SPEECH_ROUTES,
        exception_handlers={SpeechError: speech_error_handler},
    )
    return json_api(
        [speech, healthz_route(), readiness_route(readiness_check(lambda: fronts[0]))],
        title="text-to-speech",
        version=settings.version,
        max_body_bytes=settings.max_body_bytes,
        lifespan=[clients],
        before_send=[version_header(settings.version)],
    )
