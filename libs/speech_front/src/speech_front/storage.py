"""Content-addressed audio files on the shared audio volume.

A file is named ``<sha256 of (engine, voice, text)>.wav``; ids are validated
strictly (exactly 64 lowercase hex digits) before they touch the file system,
so no request can name a path outside the directory.

Writes are atomic: the audio goes to a temp file in the same directory
(``.<id>.<random>.tmp``, a name the id check never accepts), is fsynced, renamed
over the final name and the directory is fsynced. A reader therefore sees the
old file, the new file or no file, never a partial one, even if the writer is
killed; a writer that fails removes its temp file. Temp files left by a killed
process are swept at start-up once they are old enough not to belong to a
concurrent writer.

All methods here block; the async callers run them in a worker thread.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import BinaryIO

import msgspec
from pcm_wav import PcmFormat, parse_wav, wav_header

from speech_front.errors import SpeechError, StorageFull, StorageUnavailable

log = logging.getLogger("speech_front.storage")

AUDIO_ID_PATTERN = re.compile(r"[0-9a-f]{64}")
_HEADER_PROBE_BYTES = 4096
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_TEMP_SUFFIX = ".tmp"
READY_PROBE_BYTES = 64 * 1024


def audio_id(engine: str, voice: str, text: str) -> str:
    """The content hash naming the audio of ``text`` said by ``voice`` on ``engine``."""
    return sha256(msgspec.json.encode([engine, voice, text])).hexdigest()


def is_audio_id(value: str) -> bool:
    return AUDIO_ID_PATTERN.fullmatch(value) is not None


def storage_error(exc: OSError, action: str) -> SpeechError:
    """The HTTP-facing error for an OSError raised while ``action``."""
    if exc.errno in _FULL_ERRNOS:
        return StorageFull(f"audio volume is full: cannot {action} ({os.strerror(exc.errno or 0)})")
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return StorageUnavailable(f"audio directory is not writable: cannot {action} ({reason})")


@dataclass(frozen=True)
class StoredAudio:
    id: str
    size: int
    mtime_ns: int
    duration_ms: int

    @property
    def etag(self) -> str:
        return f'"{self.id[:16]}-{self.size:x}-{self.mtime_ns:x}"'


class AudioStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, audio_id: str) -> Path:
        if not is_audio_id(audio_id):
            raise ValueError(f"not an audio id: {audio_id!r}")
        return self.root / f"{audio_id}.wav"

    def ensure_dir(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, f"create {self.root}") from exc

    def is_writable(self) -> bool:
        """True if a file can be created, written, synced and removed in the directory now."""
        return self.writability_problem() is None

    def writability_problem(self) -> str | None:
        """Why a short audio file could not be stored now (full, not writable), or None.

        Writes and syncs ``READY_PROBE_BYTES`` (about 1.5 s of audio): a volume
        without room for that is full as far as the front is concerned.
        """
        try:
            fd, name = tempfile.mkstemp(dir=self.root, prefix=".probe.", suffix=_TEMP_SUFFIX)
        except OSError as exc:
            return storage_error(exc, "create a file").message
        try:
            with os.fdopen(fd, "wb") as probe:  # buffered: short writes are retried
                probe.write(bytes(READY_PROBE_BYTES))
                probe.flush()
                os.fsync(probe.fileno())
            return None
        except OSError as exc:
            return storage_error(exc, "write a file").message
        finally:
            with contextlib.suppress(OSError):
                os.unlink(name)

    def lookup(self, audio_id: str) -> StoredAudio | None:
        """The stored audio for ``audio_id``, or None if there is none (or it is not a WAV)."""
        try:
            with open(self.path_for(audio_id), "rb") as handle:
                return _describe(audio_id, handle)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise storage_error(exc, "read stored audio") from exc

    def open(self, audio_id: str) -> tuple[BinaryIO, StoredAudio] | None:
        """An open handle on the stored file and what it is; the caller closes it.

        Reading from the handle gives the version that existed when it was opened,
        even if a writer replaces the file meanwhile.
        """
        try:
            handle = open(self.path_for(audio_id), "rb")  # noqa: SIM115 - returned to caller
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise storage_error(exc, "read stored audio") from exc
        try:
            info = _describe(audio_id, handle)
        except BaseException:
            handle.close()
            raise
        if info is None:
            handle.close()
            return None
        handle.seek(0)
        return handle, info

    def write_wav(self, audio_id: str, wav: bytes) -> StoredAudio:
        """Store a complete WAV file atomically, replacing any previous one."""
        writer = AtomicWriter(self, audio_id)
        try:
            writer.write(wav)
            return writer.commit()
        finally:
            writer.abort()

    def stream_writer(self, audio_id: str, fmt: PcmFormat) -> WavStreamWriter:
        return WavStreamWriter(self, audio_id, fmt)

    def sweep_stale_temp_files(self, older_than_s: float = 3600.0) -> int:
        """Remove temp files older than ``older_than_s`` (left behind by a killed writer)."""
        removed = 0
        cutoff = time.time() - older_than_s
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.root):
                if entry.name.startswith(".") and entry.name.endswith(_TEMP_SUFFIX):
                    with contextlib.suppress(OSError):
                        if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                            os.unlink(entry.path)
                            removed += 1
        if removed:
            log.info("removed stale temp files", extra={"audio.temp_files_removed": removed})
        return removed


def _describe(audio_id: str, handle: BinaryIO) -> StoredAudio | None:
    stat = os.fstat(handle.fileno())
    info = parse_wav(handle.read(_HEADER_PROBE_BYTES))
    if info is None:
        return None
    return StoredAudio(audio_id, stat.st_size, stat.st_mtime_ns, info.duration_ms)


class AtomicWriter:
    """Bytes into a temp file beside the final name; :meth:`commit` renames it in place.

    :meth:`abort` (safe after a commit) removes the temp file; a failure in any
    step becomes a :class:`StorageFull` or :class:`StorageUnavailable`.
    """

    def __init__(self, store: AudioStore, audio_id: str) -> None:
        self._final = store.path_for(audio_id)
        self._id = audio_id
        self._dir = store.root
        self._committed = False
        try:
            fd, name = tempfile.mkstemp(dir=self._dir, prefix=f".{audio_id}.", suffix=_TEMP_SUFFIX)
        except OSError as exc:
            raise storage_error(exc, "create a file") from exc
        self._temp = Path(name)
        self._file: BinaryIO = os.fdopen(fd, "w+b")
        self.size = 0
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o644)

    def write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            raise storage_error(exc, "write audio") from exc
        self.size += len(data)

    def patch(self, offset: int, data: bytes) -> None:
        try:
            self._file.seek(offset)
            self._file.write(data)
            self._file.seek(0, os.SEEK_END)
        except OSError as exc:
            raise storage_error(exc, "write audio") from exc

    def commit(self) -> StoredAudio:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.seek(0)
            info = _describe(self._id, self._file)
            self._file.close()
            os.replace(self._temp, self._final)
            self._committed = True
            _fsync_dir(self._dir)
        except OSError as exc:
            raise storage_error(exc, "store audio") from exc
        if info is None:
            raise StorageUnavailable("backend audio is not a WAV file")  # pragma: no cover
        return info

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        if not self._committed:
            with contextlib.suppress(OSError):
                os.unlink(self._temp)


class WavStreamWriter:
    """A WAV file written while its PCM arrives: header first, sizes patched at the end."""

    def __init__(self, store: AudioStore, audio_id: str, fmt: PcmFormat) -> None:
        self.fmt = fmt
        self._writer = AtomicWriter(store, audio_id)
        self._data_size = 0
        try:
            self._writer.write(wav_header(fmt, 0))
        except BaseException:
            self._writer.abort()
            raise

    def write(self, pcm: bytes) -> None:
        self._writer.write(pcm)
        self._data_size += len(pcm)

    def commit(self) -> StoredAudio:
        self._writer.patch(0, wav_header(self.fmt, self._data_size))
        return self._writer.commit()

    def abort(self) -> None:
        self._writer.abort()

    @property
    def data_size(self) -> int:
        return self._data_size


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
