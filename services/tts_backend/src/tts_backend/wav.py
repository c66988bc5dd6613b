"""WAV (RIFF) container for 16-bit PCM: write a header, parse and check a file."""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER_SIZE = 44
_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")
_PCM_FORMAT = 1


class WavError(ValueError):
    """The bytes are not a WAV file this module understands."""


@dataclass(frozen=True)
class WavAudio:
    sample_rate: int
    channels: int
    bits_per_sample: int
    pcm: bytes

    @property
    def frames(self) -> int:
        return len(self.pcm) // (self.channels * self.bits_per_sample // 8)

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.sample_rate


def wav_header(data_size: int, sample_rate: int, channels: int = 1, bits: int = 16) -> bytes:
    """The canonical 44-byte header for ``data_size`` bytes of PCM."""
    block_align = channels * bits // 8
    return _HEADER.pack(
        b"RIFF",
        36 + data_size,
        b"WAVE",
        b"fmt ",
        16,
        _PCM_FORMAT,
        channels,
        sample_rate,
        sample_rate * block_align,
        block_align,
        bits,
        b"data",
        data_size,
    )


def to_wav(pcm: bytes, sample_rate: int) -> bytes:
    """A complete mono 16-bit WAV file around ``pcm``."""
    return wav_header(len(pcm), sample_rate) + pcm


def parse_wav(data: bytes) -> WavAudio:
    """Walk the RIFF chunks; check sizes and format; return the PCM.

    Accepts extra chunks (LIST, fact...) before ``data``, as other encoders
    (Google's) may write them.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    riff_size = struct.unpack_from("<I", data, 4)[0]
    if riff_size + 8 != len(data):
        raise WavError(f"RIFF size {riff_size} does not match file size {len(data)}")
    offset = 12
    fmt: tuple[int, int, int, int] | None = None
    while offset + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, offset)
        body = offset + 8
        if body + size > len(data):
            raise WavError(f"chunk {chunk_id!r} overruns the file")
        if chunk_id == b"fmt ":
            if size < 16:
                raise WavError("fmt chunk too short")
            audio_format, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            fmt = (audio_format, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise WavError("data chunk before fmt chunk")
            audio_format, channels, rate, bits = fmt
            if audio_format != _PCM_FORMAT:
                raise WavError(f"not PCM (format {audio_format})")
            if channels < 1 or rate < 1 or bits not in (8, 16, 24, 32):
                raise WavError("bad fmt values")
            pcm = data[body : body + size]
            if len(pcm) % (channels * bits // 8):
                raise WavError("data is not a whole number of frames")
            return WavAudio(rate, channels, bits, pcm)
        offset = body + size + (size & 1)
    raise WavError("no data chunk")
