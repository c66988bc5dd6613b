"""The gRPC server: TextToSpeech + health + reflection, started and stopped cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from tts.v1 import tts_pb2, tts_pb2_grpc

from tts_backend.audio_limit import AudioLimit
from tts_backend.engines.base import Engine
from tts_backend.servicer import TextToSpeechServicer
from tts_backend.settings import Settings

log = logging.getLogger(__name__)

SERVICE_NAME = tts_pb2.DESCRIPTOR.services_by_name["TextToSpeech"].full_name
OVERALL = ""  # the health service's name for "the whole server"


def create_engine(settings: Settings) -> Engine:
    if settings.engine == "google":
        from tts_backend.engines.google import GoogleEngine

        return GoogleEngine(
            settings.google_endpoint,
            settings.google_insecure,
            settings.google_timeout_s,
            settings.segment_chars,
            settings.pipeline_depth,
        )
    from tts_backend.engines.espeak import EspeakEngine

    return EspeakEngine(settings.workers, settings.segment_chars, settings.pipeline_depth)


def create_server(
    settings: Settings, engine: Engine, health_servicer: health.aio.HealthServicer
) -> grpc.aio.Server:
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", settings.max_receive_bytes),
            ("grpc.max_send_message_length", settings.max_send_bytes),
            ("grpc.so_reuseport", 0),
        ]
    )
    tts_pb2_grpc.add_TextToSpeechServicer_to_server(
        TextToSpeechServicer(
            engine,
            settings.max_text_chars,
            settings.default_voice,
            AudioLimit(settings.max_audio_s, settings.max_send_bytes),
        ),
        server,
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    if server.add_insecure_port(settings.address) == 0:
        raise OSError(f"cannot listen on {settings.address}")
    return server


async def _set_health(health_servicer: health.aio.HealthServicer, status: int) -> None:
    for name in (OVERALL, SERVICE_NAME):
        await health_servicer.set(name, status)


async def _check_default_voice(engine: Engine, voice: str) -> None:
    if voice and voice not in {v.name for v in await engine.list_voices("")}:
        raise RuntimeError(f"TTS_DEFAULT_VOICE={voice!r} is not a voice of {engine.name}")


async def serve(settings: Settings) -> None:
    """Listen (NOT_SERVING), load the engine, SERVING; on SIGTERM/SIGINT drain and stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    engine = create_engine(settings)
    health_servicer = health.aio.HealthServicer()
    await _set_health(health_servicer, health_pb2.HealthCheckResponse.NOT_SERVING)
    server = create_server(settings, engine, health_servicer)
    await server.start()
    log.info("listening", extra={"address": settings.address, "engine": settings.engine})
    try:
        starting = asyncio.ensure_future(engine.start())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()
            await _check_default_voice(engine, settings.default_voice)
            await _set_health(health_servicer, health_pb2.HealthCheckResponse.SERVING)
            log.info("serving", extra={"engine": settings.engine})
            await stop.wait()
        else:
            starting.cancel()
        stopping.cancel()
        log.info(
            "shutting down",
            extra={
                "drain_delay_s": settings.drain_delay_s,
                "grace_period_s": settings.grace_period_s,
            },
        )
        await _set_health(health_servicer, health_pb2.HealthCheckResponse.NOT_SERVING)
        # Load balancers (probes, the mesh) see NOT_SERVING and move new calls
        # elsewhere; until then new calls are still served.
        await asyncio.sleep(settings.drain_delay_s)
        await server.stop(settings.grace_period_s)
    finally:
        await server.stop(0)
        await engine.close()
        log.info("stopped")
