"""Content-addressed, atomic audio storage on a real directory."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pcm_wav import HEADER_SIZE, PcmFormat, parse_wav, wav_header
from speech_front.errors import StorageUnavailable
from speech_front.storage import AudioStore, audio_id, is_audio_id

FMT = PcmFormat(sample_rate_hz=16000)


def wav(pcm: bytes) -> bytes:
    return wav_header(FMT, len(pcm)) + pcm


def test_id_is_a_hash_of_engine_voice_and_text() -> None:
    ids = {
        audio_id("espeak", "", "hello"),
        audio_id("google", "", "hello"),
        audio_id("espeak", "en-gb", "hello"),
        audio_id("espeak", "", "hello!"),
        audio_id("espeak", "a", "bc"),
        audio_id("espeak", "ab", "c"),
    }
    assert len(ids) == 6
    assert audio_id("espeak", "", "hello") == audio_id("espeak", "", "hello")
    assert all(is_audio_id(i) for i in ids)


@pytest.mark.parametrize(
    "value",
    ["", "..", "../" + "a" * 61, "A" * 64, "a" * 63, "a" * 65, "/" + "a" * 63, "a" * 63 + "\x00"],
)
def test_only_64_lowercase_hex_digits_are_ids(tmp_path: Path, value: str) -> None:
    assert not is_audio_id(value)
    with pytest.raises(ValueError):
        AudioStore(tmp_path).path_for(value)


def test_write_then_lookup_and_open(tmp_path: Path) -> None:
    store = AudioStore(tmp_path)
    speech_id = audio_id("e", "", "t")
    stored = store.write_wav(speech_id, wav(b"\x01\x00" * 8000))
    assert stored.size == HEADER_SIZE + 16000
    assert stored.duration_ms == 500
    assert store.lookup(speech_id) == stored
    opened = store.open(speech_id)
    assert opened is not None
    handle, info = opened
    with handle:
        assert handle.read() == (tmp_path / f"{speech_id}.wav").read_bytes()
    assert info == stored
    assert [p.name for p in tmp_path.iterdir()] == [f"{speech_id}.wav"]


def test_replacing_keeps_open_readers_on_the_old_file(tmp_path: Path) -> None:
    store = AudioStore(tmp_path)
    speech_id = audio_id("e", "", "t")
    store.write_wav(speech_id, wav(b"\x01\x00" * 100))
    opened = store.open(speech_id)
    assert opened is not None
    handle, _ = opened
    store.write_wav(speech_id, wav(b"\x02\x00" * 300))
    with handle:
        assert len(handle.read()) == HEADER_SIZE + 200
    assert store.lookup(speech_id).size == HEADER_SIZE + 600  # type: ignore[union-attr]


def test_missing_and_foreign_files_are_not_audio(tmp_path: Path) -> None:
    store = AudioStore(tmp_path)
    speech_id = audio_id("e", "", "t")
    assert store.lookup(speech_id) is None
    assert store.open(speech_id) is None
    (tmp_path / f"{speech_id}.wav").write_bytes(b"not a wav file")
    assert store.lookup(speech_id) is None
    assert store.open(speech_id) is None


def test_stream_writer_patches_the_header_sizes(tmp_path: Path) -> None:
    store = AudioStore(tmp_path)
    speech_id = audio_id("e", "", "streamed")
    writer = store.stream_writer(speech_id, FMT)
    for _ in range(5):
        writer.write(b"\x00\x01" * 1000)
    assert store.lookup(speech_id) is None, "nothing visible before commit"
    stored = writer.commit()
    writer.abort()  # harmless after a commit
    blob = (tmp_path / f"{speech_id}.wav").read_bytes()
    info = parse_wav(blob)
    assert info is not None
    assert info.data_size == 10000 == len(blob) - HEADER_SIZE
    assert int.from_bytes(blob[4:8], "little") == len(blob) - 8
    assert stored.size == len(blob)
    assert [p.name for p in tmp_path.iterdir()] == [f"{speech_id}.wav"]


def test_abort_removes_the_temp_file(tmp_path: Path) -> None:
    store = AudioStore(tmp_path)
    writer = store.stream_writer(audio_id("e", "", "aborted"), FMT)
    writer.write(b"\x00" * 100)
    assert len(list(tmp_path.iterdir())) == 1
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_killed_writer_leaves_only_an_unservable_temp_file(tmp_path: Path) -> None:
    speech_id = audio_id("e", "", "killed")
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from speech_front.storage import AudioStore
        from pcm_wav import PcmFormat
        writer = AudioStore(Path({str(tmp_path)!r})).stream_writer({speech_id!r}, PcmFormat(16000))
        writer.write(b"\\x00" * 4096)
        print("written", flush=True)
        sys.stdin.read()  # wait to be killed
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"written\n"
        child.kill()
        child.wait()
    finally:
        child.kill()
    names = [p.name for p in tmp_path.iterdir()]
    assert len(names) == 1
    assert names[0].startswith(f".{speech_id}.") and names[0].endswith(".tmp")
    store = AudioStore(tmp_path)
    assert store.lookup(speech_id) is None
    assert store.sweep_stale_temp_files(older_than_s=3600) == 0, "too recent to sweep"
    old = time.time() - 7200
    os.utime(tmp_path / names[0], (old, old))
    assert store.sweep_stale_temp_files(older_than_s=3600) == 1
    assert list(tmp_path.iterdir()) == []


def test_unwritable_directory_is_storage_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = AudioStore(blocker / "audio")
    assert not store.is_writable()
    with pytest.raises(StorageUnavailable, match="not writable"):
        store.ensure_dir()
    with pytest.raises(StorageUnavailable, match="not writable"):
        store.write_wav(audio_id("e", "", "t"), wav(b""))


def test_file_size_limit_is_storage_full_and_cleans_up(tmp_path: Path) -> None:
    # A child with RLIMIT_FSIZE: writes past the limit fail with EFBIG, like a full volume.
    script = textwrap.dedent(
        f"""
        import resource
        from pathlib import Path
        from speech_front.errors import StorageFull
        from speech_front.storage import AudioStore, audio_id
        from pcm_wav import PcmFormat
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
        store = AudioStore(Path({str(tmp_path)!r}))
        writer = store.stream_writer(audio_id("e", "", "big"), PcmFormat(16000))
        try:
            for _ in range(100):
                writer.write(b"\\x00" * 4096)
            writer.commit()
        except StorageFull as exc:
            print("full:", exc.message)
        finally:
            writer.abort()
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.startswith("full: audio volume is full"), result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []
