"""Benchmark tts-backend (eSpeak NG): real-time factor through gRPC vs in-process.

    uv run python bench/bench_tts_backend.py [--duration 3] [--workers N] [--ttfc-runs 20]

Real-time factor (rtf) = seconds of audio produced per wall-clock second. One
2,000-character English text is used throughout. Figures, one per line as
``name value``:

    inprocess_rtf            eSpeak NG called directly in this process (one core), whole text
    inprocess_sentences_rtf  the same, one call per sentence as the server splits it
    grpc_unary_c1_rtf        Synthesize, 1 request at a time
    grpc_unary_c8_rtf        Synthesize, 8 concurrent callers
    grpc_stream_c1_rtf       StreamSynthesize, 1 at a time
    grpc_stream_c8_rtf       StreamSynthesize, 8 concurrent callers
    ttfc_ms_p50 / _max       time to the first audio chunk of a stream
    ratio_unary_c1_vs_inprocess, ratio_stream_c1_vs_inprocess   (goal >= 0.7)
    ratio_unary_c8_vs_c1, ratio_stream_c8_vs_c1                  (goal >= 1.6)
    grpc_unary_c{1,8}_depth1_rtf, ratio_unary_c8_vs_c1_depth1

The backend synthesizes up to TTS_PIPELINE_DEPTH (default 2) sentences of one
request at once on different workers, so a single caller already uses both
cores; the ``depth1`` figures rerun unary with one sentence at a time per
request, where only concurrent callers can fill the cores.

The server runs with TTS_WORKERS (default: CPU count) worker processes; the
client shares the machine, so run it on an otherwise idle host for final figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

import grpc
from testkit.tts_backend import running_tts_backend
from tts.v1 import tts_pb2, tts_pb2_grpc
from tts_backend.engines.espeak_native import EspeakNative
from tts_backend.text_split import split_sentences

SENTENCES = [
    "The old lighthouse keeper climbed the spiral stairs every evening at dusk.",
    "He trimmed the wick, polished the great lens, and watched the ships pass by.",
    "Storms came and went, but the light never failed in forty years of service!",
    "Was he lonely out there, with only the gulls and the wind for company?",
    "Perhaps, but he kept a journal of every vessel, every tide, and every star.",
]
SAMPLE_RATE = 22050
OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]


def bench_text(chars: int = 2000) -> str:
    words: list[str] = []
    index = 0
    while len(" ".join(words)) < chars:
        words.append(SENTENCES[index % len(SENTENCES)])
        index += 1
    return " ".join(words)[:chars].rsplit(" ", 1)[0] + "."


def inprocess_rtf(engine: EspeakNative, pieces: list[str], duration: float) -> float:
    engine.synthesize("Warm up.", "gmw/en-US", 175)
    audio_bytes = 0
    start = time.perf_counter()
    while time.perf_counter() - start < duration:
        audio_bytes += sum(len(engine.synthesize(p, "gmw/en-US", 175)) for p in pieces)
    return audio_bytes / 2 / SAMPLE_RATE / (time.perf_counter() - start)


async def grpc_rtf(
    address: str, text: str, concurrency: int, stream: bool, duration: float
) -> float:
    request = tts_pb2.SynthesizeRequest(text=text, voice="en-us")
    async with grpc.aio.insecure_channel(address, options=OPTIONS) as channel:
        stub = tts_pb2_grpc.TextToSpeechStub(channel)
        await stub.Synthesize(request)  # warm up the connection and workers
        start = time.perf_counter()
        stop_at = start + duration

        async def caller() -> int:
            samples = 0
            while time.perf_counter() < stop_at:
                if stream:
                    async for message in stub.StreamSynthesize(request):
                        samples += len(message.audio_chunk) // 2
                else:
                    response = await stub.Synthesize(request)
                    samples += round(response.duration_seconds * SAMPLE_RATE)
            return samples

        totals = await asyncio.gather(*(caller() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return sum(totals) / SAMPLE_RATE / wall


async def time_to_first_chunk(address: str, text: str, runs: int) -> list[float]:
    request = tts_pb2.SynthesizeRequest(text=text, voice="en-us")
    results = []
    async with grpc.aio.insecure_channel(address, options=OPTIONS) as channel:
        stub = tts_pb2_grpc.TextToSpeechStub(channel)
        await stub.Synthesize(tts_pb2.SynthesizeRequest(text="Warm up."))
        for _ in range(runs):
            start = time.perf_counter()
            call = stub.StreamSynthesize(request)
            async for message in call:
                if message.WhichOneof("payload") == "audio_chunk":
                    results.append((time.perf_counter() - start) * 1000)
                    break
            call.cancel()
    return results


async def run(address: str, text: str, duration: float, ttfc_runs: int) -> dict[str, float]:
    figures = {}
    for stream in (False, True):
        kind = "stream" if stream else "unary"
        for concurrency in (1, 8):
            rtf = await grpc_rtf(address, text, concurrency, stream, duration)
            figures[f"grpc_{kind}_c{concurrency}_rtf"] = rtf
    ttfc = await time_to_first_chunk(address, text, ttfc_runs)
    figures["ttfc_ms_p50"] = statistics.median(ttfc)
    figures["ttfc_ms_max"] = max(ttfc)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per scenario")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--ttfc-runs", type=int, default=20)
    options = parser.parse_args()
    text = bench_text()

    engine = EspeakNative()
    figures = {
        "inprocess_rtf": inprocess_rtf(engine, [text], options.duration),
        "inprocess_sentences_rtf": inprocess_rtf(engine, split_sentences(text), options.duration),
    }
    with running_tts_backend({"TTS_WORKERS": str(options.workers)}) as backend:
        figures.update(asyncio.run(run(backend.address, text, options.duration, options.ttfc_runs)))
    depth1 = {"TTS_WORKERS": str(options.workers), "TTS_PIPELINE_DEPTH": "1"}
    with running_tts_backend(depth1) as backend:
        for concurrency in (1, 8):
            figures[f"grpc_unary_c{concurrency}_depth1_rtf"] = asyncio.run(
                grpc_rtf(backend.address, text, concurrency, False, options.duration)
            )
    for kind in ("unary", "stream"):
        c1 = figures[f"grpc_{kind}_c1_rtf"]
        figures[f"ratio_{kind}_c1_vs_inprocess"] = c1 / figures["inprocess_rtf"]
        figures[f"ratio_{kind}_c8_vs_c1"] = figures[f"grpc_{kind}_c8_rtf"] / c1
    figures["ratio_unary_c8_vs_c1_depth1"] = (
        figures["grpc_unary_c8_depth1_rtf"] / figures["grpc_unary_c1_depth1_rtf"]
    )
    print(f"text_chars {len(text)}")
    print(f"workers {options.workers}")
    for name, value in figures.items():
        print(f"{name} {value:.3f}")


if __name__ == "__main__":
    main()
