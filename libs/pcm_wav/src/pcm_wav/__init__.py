"""WAV (RIFF, PCM): the header writer, a lenient chunk walker and a strict reader.

WAV is the audio format of the text-to-speech contract: tts-backend writes
the header in front of its samples (and checks Google's files with
:func:`read_wav`); the speech front reads the format of what the backend sent
and of its stored files with :func:`parse_wav`, and writes headers while it
streams audio to disk.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "HEADER_SIZE",
    "PcmFormat",
    "WavAudio",
    "WavError",
    "WavInfo",
    "parse_wav",
    "read_wav",
    "wav_header",
]

HEADER_SIZE = 44
_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")
_PCM = 1


@dataclass(frozen=True)
class PcmFormat:
    sample_rate_hz: int
    channels: int = 1
    bits_per_sample: int = 16

    @property
    def byte_rate(self) -> int:
        return self.sample_rate_hz * self.channels * self.bits_per_sample // 8

    @property
    def block_align(self) -> int:
        return self.channels * self.bits_per_sample // 8


def wav_header(fmt: PcmFormat, data_size: int) -> bytes:
    """The 44-byte header of a PCM WAV file holding ``data_size`` bytes of samples."""
    return _HEADER.pack(
        b"RIFF",
        36 + data_size,
        b"WAVE",
        b"fmt ",
        16,
        _PCM,
        fmt.channels,
        fmt.sample_rate_hz,
        fmt.byte_rate,
        fmt.block_align,
        fmt.bits_per_sample,
        b"data",
        data_size,
    )


@dataclass(frozen=True)
class WavInfo:
    fmt: PcmFormat
    data_size: int

    @property
    def duration_ms(self) -> int:
        if self.fmt.byte_rate <= 0:
            return 0
        return round(self.data_size * 1000 / self.fmt.byte_rate)


@dataclass(frozen=True)
class _Chunks:
    """What the walk found: the ``fmt `` chunk and where the ``data`` chunk starts."""

    fmt: PcmFormat
    audio_format: int  # 1: PCM
    data_start: int  # offset of the samples (just after the data chunk's header)
    data_size: int  # as the data chunk's header says


def _walk(blob: bytes) -> _Chunks | None:
    """Walk the chunks up to the ``data`` chunk's header; None if not RIFF/WAVE with fmt first."""
    if len(blob) < 12 or blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        return None
    offset = 12
    found: tuple[int, PcmFormat] | None = None
    while offset + 8 <= len(blob):
        chunk_id = blob[offset : offset + 4]
        (size,) = struct.unpack_from("<I", blob, offset + 4)
        body = offset + 8
        if chunk_id == b"fmt " and size >= 16 and body + 16 <= len(blob):
            audio_format, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", blob, body)
            found = (audio_format, PcmFormat(rate, channels, bits))
        elif chunk_id == b"data":
            if found is None:
                return None
            return _Chunks(found[1], found[0], body, size)
        offset = body + size + (size & 1)
    return None


def parse_wav(blob: bytes) -> WavInfo | None:
    """Format and data size of a RIFF/WAVE file, walking its chunks; None if not one.

    ``blob`` needs to hold the file up to the start of its ``data`` chunk (the
    whole file is fine); the data size comes from that chunk's header.
    """
    chunks = _walk(blob)
    return None if chunks is None else WavInfo(chunks.fmt, chunks.data_size)


class WavError(ValueError):
    """The bytes are not a consistent PCM WAV file."""


@dataclass(frozen=True)
class WavAudio:
    fmt: PcmFormat
    pcm: bytes

    @property
    def frames(self) -> int:
        return len(self.pcm) // self.fmt.block_align

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.fmt.sample_rate_hz


def read_wav(blob: bytes) -> WavAudio:
    """PCM and format of a complete WAV file; WavError unless every size adds up.

    Checks: RIFF size = file size - 8, a PCM ``fmt `` chunk, and a ``data``
    chunk that is the last chunk and ends exactly at the end of the file, holding
    whole frames.
    """
    chunks = _walk(blob)
    if chunks is None:
        raise WavError("not a RIFF/WAVE file with fmt and data chunks")
    (riff_size,) = struct.unpack_from("<I", blob, 4)
    if riff_size + 8 != len(blob):
        raise WavError(f"RIFF size {riff_size} does not match file size {len(blob)}")
    if chunks.data_start + chunks.data_size != len(blob):
        raise WavError("data chunk size does not match the end of the file")
    if chunks.audio_format != _PCM:
        raise WavError(f"not PCM (format {chunks.audio_format})")
    fmt = chunks.fmt
    if fmt.channels < 1 or fmt.sample_rate_hz < 1 or fmt.bits_per_sample not in (8, 16, 24, 32):
        raise WavError("bad fmt values")
    if chunks.data_size % fmt.block_align:
        raise WavError("data is not a whole number of frames")
    return WavAudio(fmt, blob[chunks.data_start :])
