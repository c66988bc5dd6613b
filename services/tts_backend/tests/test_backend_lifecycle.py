"""Start-up, health and graceful shutdown of the tts-backend process."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from testkit.process import console_script
from testkit.tts_backend import running_tts_backend
from tts.v1 import tts_pb2, tts_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
TEXT = " ".join(f"Sentence {i} goes on for a while." for i in range(60))


def wait_for_status(address: str, wanted: int, service: str = "") -> None:
    deadline = time.monotonic() + 20
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
            if reply.status == wanted:
                return
            time.sleep(0.02)
    raise AssertionError(f"health of {service!r} never became {wanted}")


def test_sigterm_flips_health_and_lets_the_call_in_flight_finish() -> None:
    env = {"TTS_WORKERS": "1", "TTS_DRAIN_DELAY_S": "3", "TTS_GRACE_PERIOD_S": "20"}
    with running_tts_backend(env) as backend:
        wait_for_status(backend.address, SERVING, "tts.v1.TextToSpeech")
        with grpc.insecure_channel(backend.address) as channel:
            stub = tts_pb2_grpc.TextToSpeechStub(channel)
            call = stub.StreamSynthesize(tts_pb2.SynthesizeRequest(text=TEXT))
            assert next(call).WhichOneof("payload") == "format"
            first = next(call)
            backend.process.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]

            wait_for_status(backend.address, NOT_SERVING)
            wait_for_status(backend.address, NOT_SERVING, "tts.v1.TextToSpeech")
            rest = list(call)
        assert rest[-1].WhichOneof("payload") == "summary"
        pcm = first.audio_chunk + b"".join(m.audio_chunk for m in rest[:-1])
        assert rest[-1].summary.total_samples == len(pcm) // 2 > 0
        assert backend.process.wait_exit(timeout=30) == 0
        assert backend.log_lines("shutting down") and backend.log_lines("stopped")


def test_bad_setting_exits_2_naming_the_variable() -> None:
    result = subprocess.run(
        [console_script("tts-backend")],
        env={"PATH": "/usr/bin:/bin", "TTS_ENGINE": "festival"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "TTS_ENGINE" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except (FileNotFoundError, ProcessLookupError):  # a thread or process just ended
        return b""


def _espeak_workers(pid: int) -> list[int]:
    """Child processes started by multiprocessing's spawn (the engine workers)."""
    children = {
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in _read(task / "children").split()
    }
    return sorted(c for c in children if b"spawn_main" in _read(Path(f"/proc/{c}/cmdline")))


def test_a_dead_worker_is_replaced_and_the_server_keeps_answering() -> None:
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    with running_tts_backend({"TTS_WORKERS": "2"}) as backend:
        workers = _espeak_workers(backend.process.pid)
        assert len(workers) == 2
        with grpc.insecure_channel(backend.address, options=options) as channel:
            stub = tts_pb2_grpc.TextToSpeechStub(channel)
            in_flight = stub.Synthesize.future(tts_pb2.SynthesizeRequest(text=TEXT))
            os.kill(workers[0], signal.SIGKILL)
            try:
                assert in_flight.result().duration_seconds > 0
            except grpc.RpcError as error:  # it was using the killed worker
                assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
            for _ in range(4):  # both workers get used: the new one works
                response = stub.Synthesize(tts_pb2.SynthesizeRequest(text=TEXT))
                assert response.duration_seconds > 0
        assert backend.log_lines("espeak worker exited")
        replaced = _espeak_workers(backend.process.pid)
        assert len(replaced) == 2 and workers[0] not in replaced


def test_sigterm_during_engine_start_up_exits_cleanly() -> None:
    """Workers still loading when SIGTERM arrives must not keep the process alive."""
    with running_tts_backend({"TTS_WORKERS": "2"}, wait_ready=False) as backend:
        deadline = time.monotonic() + 20
        while not backend.log_lines("listening"):
            assert time.monotonic() < deadline, backend.process.output()
            time.sleep(0.005)
        backend.process.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        assert backend.process.wait_exit(timeout=30) == 0, backend.process.output()
        assert backend.log_lines("stopped")
