"""Process lifecycle: kill -9 mid-write leaves nothing GET /audio serves; SIGTERM is graceful.

Audio is written to ``.<id>.<random>.tmp`` and renamed to ``<id>.wav`` only once
complete and fsynced; the temp name is not a valid audio id, so whatever a
killed writer leaves behind can never be served.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from pcm_wav import HEADER_SIZE, parse_wav
from speech_front.storage import audio_id
from testkit.fronts import FrontServer
from testkit.process import frozen
from testkit.tts_backend import TtsBackend

LONG_TEXT = ("Every sentence here becomes one more chunk of audio on the disk. " * 76)[:4900]


@contextlib.contextmanager
def request_in_background(url: str, text: str) -> Iterator[threading.Thread]:
    """POST /speech from a thread; the front may die under it, so its errors are ignored."""

    def post() -> None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(f"{url}/speech", json={"text": text}, timeout=60.0)

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        thread.join(timeout=60.0)


def temp_files(audio_dir: Path, speech_id: str) -> list[Path]:
    return list(audio_dir.glob(f".{speech_id}.*.tmp"))


def wait_for_partial_write(
    audio_dir: Path, speech_id: str, thread: threading.Thread, *, min_bytes: int
) -> Path | None:
    """The temp file once it holds ``min_bytes``; None if the request ended first."""
    deadline = time.monotonic() + 60.0
    while thread.is_alive() and time.monotonic() < deadline:
        for path in temp_files(audio_dir, speech_id):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_size >= min_bytes:
                    return path
        time.sleep(0.0005)
    return None


def assert_only_complete_files(audio_dir: Path) -> None:
    for path in audio_dir.glob("*.wav"):
        blob = path.read_bytes()
        info = parse_wav(blob)
        assert info is not None, path
        assert info.data_size == len(blob) - HEADER_SIZE, path


def test_kill_9_mid_stream_leaves_nothing_to_serve(
    fronts: dict[str, FrontServer], backend: TtsBackend
) -> None:
    v2 = fronts["v2"]
    speech_id = audio_id("espeak", "", LONG_TEXT)
    with request_in_background(v2.url, LONG_TEXT) as thread:
        partial = wait_for_partial_write(v2.audio_dir, speech_id, thread, min_bytes=HEADER_SIZE + 1)
        assert partial is not None, "v2 never started writing"
        # Hold the backend so the write stays half done, then kill the writer.
        with frozen(backend.process.pid):
            v2.process.kill()
    assert partial.exists(), "the partial temp file is the evidence of a mid-write kill"
    assert not (v2.audio_dir / f"{speech_id}.wav").exists()
    assert_only_complete_files(v2.audio_dir)

    v2.start_again()
    with httpx.Client(base_url=v2.url, timeout=60.0) as http:
        assert http.get(f"/audio/{speech_id}.wav").status_code == 404
        assert http.get(f"/audio/{partial.name}").status_code in (400, 404)
        again = http.post("/speech", json={"text": LONG_TEXT})
        assert again.status_code == 201, again.text
        assert again.json()["cached"] is False
        audio = http.get(f"/audio/{speech_id}.wav")
    assert audio.status_code == 200
    info = parse_wav(audio.content)
    assert info is not None
    assert info.data_size == len(audio.content) - HEADER_SIZE
    assert_only_complete_files(v2.audio_dir)


def unread_bytes_from(pid: int, port: int) -> int:
    """Bytes process ``pid`` sent to the local server on ``port`` that it has not read yet.

    From ``/proc/net/tcp{,6}``: the client's sockets are found by inode, the
    server's ends by port pair; their receive queues hold what is unread.
    """
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    rows = [
        line.split()
        for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
        for line in table.read_text().splitlines()[1:]
    ]

    def ports(row: list[str]) -> tuple[int, int]:
        return int(row[1].rsplit(":", 1)[1], 16), int(row[2].rsplit(":", 1)[1], 16)

    client_ports = {ports(row)[0] for row in rows if row[9] in inodes and ports(row)[1] == port}
    return sum(
        int(row[4].split(":")[1], 16)
        for row in rows
        if ports(row)[0] == port and ports(row)[1] in client_ports
    )


def test_kill_9_of_v1_waiting_for_its_audio_leaves_nothing_to_serve(
    fronts: dict[str, FrontServer], backend: TtsBackend
) -> None:
    """v1 writes the whole file after the unary reply, so the point to kill it at is
    fixed by freezing the backend: v1's request has reached the backend (its bytes sit
    unread in the backend's socket) and cannot be answered. What a killed writer
    leaves on disk mid-write (a temp file) is the v2 test's subject; both use the
    same AtomicWriter."""
    v1 = fronts["v1"]
    text = LONG_TEXT.replace("Every", "Each")
    speech_id = audio_id("espeak", "", text)
    with frozen(backend.process.pid), request_in_background(v1.url, text) as thread:
        deadline = time.monotonic() + 60.0
        while unread_bytes_from(v1.process.pid, backend.port) == 0:
            assert thread.is_alive(), "the request ended while the backend was frozen"
            assert time.monotonic() < deadline, "v1 never sent the request to the backend"
            time.sleep(0.01)
        v1.process.kill()
    assert not (v1.audio_dir / f"{speech_id}.wav").exists()
    assert temp_files(v1.audio_dir, speech_id) == []
    assert_only_complete_files(v1.audio_dir)

    v1.start_again()
    with httpx.Client(base_url=v1.url, timeout=60.0) as http:
        assert http.get(f"/audio/{speech_id}.wav").status_code == 404
        again = http.post("/speech", json={"text": text})
        assert again.status_code == 201, again.text
        assert again.json()["cached"] is False
        audio = http.get(f"/audio/{speech_id}.wav")
    assert audio.status_code == 200
    assert audio.content == (v1.audio_dir / f"{speech_id}.wav").read_bytes()
    assert_only_complete_files(v1.audio_dir)


def test_sigterm_lets_the_request_in_flight_finish(fronts: dict[str, FrontServer]) -> None:
    v2 = fronts["v2"]
    text = LONG_TEXT.replace("Every", "Any")
    speech_id = audio_id("espeak", "", text)
    replies: list[httpx.Response] = []

    def post() -> None:
        replies.append(httpx.post(f"{v2.url}/speech", json={"text": text}, timeout=60.0))

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    assert wait_for_partial_write(v2.audio_dir, speech_id, thread, min_bytes=1) is not None
    status = v2.process.terminate()
    thread.join(timeout=60.0)
    assert status == 0, v2.process.output()[-2000:]
    assert [r.status_code for r in replies] == [201]
    assert (v2.audio_dir / f"{speech_id}.wav").exists()
    assert temp_files(v2.audio_dir, speech_id) == []
    v2.start_again()


def test_bad_setting_exits_2_naming_the_variable() -> None:
    from testkit.process import ServiceProcess

    for command in ("tts-v1", "tts-v2"):
        with ServiceProcess([command], {"TTS_TIMEOUT_S": "soon"}) as proc:
            assert proc.wait_exit() == 2
            output = proc.output().strip().splitlines()
        assert len(output) == 1
        assert "TTS_TIMEOUT_S" in output[0]
