"""Minimal WAV (RIFF, PCM) header writing and reading."""

from __future__ import annotations

import struct
from dataclasses import dataclass

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


def parse_wav(blob: bytes) -> WavInfo | None:
    """Format and data size of a RIFF/WAVE file, walking its chunks; None if not one.

    ``blob`` needs to hold the file up to the start of its ``data`` chunk (the
    whole file is fine); the data size comes from that chunk's header.
    """
    if len(blob) < 12 or blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        return None
    offset = 12
    fmt: PcmFormat | None = None
    while offset + 8 <= len(blob):
        chunk_id = blob[offset : offset + 4]
        (size,) = struct.unpack_from("<I", blob, offset + 4)
        body = offset + 8
        if chunk_id == b"fmt " and size >= 16 and body + 16 <= len(blob):
            _, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", blob, body)
            fmt = PcmFormat(rate, channels, bits)
        elif chunk_id == b"data":
            return WavInfo(fmt, size) if fmt is not None else None
        offset = body + size + (size & 1)
    return None
