"""WAV (RIFF) for the backend: the header of mono 16-bit PCM, and a strict reader.

The header layout itself lives once in :mod:`servicekit.wav`; this
module adds the backend's fixed format and a reader that rejects anything
inconsistent (used on Google's responses and by the tests).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from servicekit.wav import HEADER_SIZE, PcmFormat
from servicekit.wav import parse_wav as _parse_header
from servicekit.wav import wav_header as _header

__all__ = ["HEADER_SIZE", "WavAudio", "WavError", "read_wav", "wav_header"]

_PCM_FORMAT = 1


class WavError(ValueError):
    """The bytes are not a consistent PCM WAV file."""


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


def wav_header(data_size: int, sample_rate: int) -> bytes:
    """The 44-byte header for ``data_size`` bytes of mono 16-bit PCM."""
    return _header(PcmFormat(sample_rate, 1, 16), data_size)


def read_wav(blob: bytes) -> WavAudio:
    """PCM and format of a complete WAV file; WavError unless every size adds up.

    Checks: RIFF size = file size - 8, a PCM ``fmt `` chunk, and a ``data``
    chunk that is the last chunk and ends exactly at the end of the file, holding
    whole frames.
    """
    info = _parse_header(blob)
    if info is None:
        raise WavError("not a RIFF/WAVE file with fmt and data chunks")
    (riff_size,) = struct.unpack_from("<I", blob, 4)
    if riff_size + 8 != len(blob):
        raise WavError(f"RIFF size {riff_size} does not match file size {len(blob)}")
    data_start = len(blob) - info.data_size
    if data_start < 20 or blob[data_start - 8 : data_start - 4] != b"data":
        raise WavError("data chunk size does not match the end of the file")
    fmt_start = blob.find(b"fmt ", 12)
    (audio_format,) = struct.unpack_from("<H", blob, fmt_start + 8)
    if audio_format != _PCM_FORMAT:
        raise WavError(f"not PCM (format {audio_format})")
    fmt = info.fmt
    if fmt.channels < 1 or fmt.sample_rate_hz < 1 or fmt.bits_per_sample not in (8, 16, 24, 32):
        raise WavError("bad fmt values")
    if info.data_size % fmt.block_align:
        raise WavError("data is not a whole number of frames")
    return WavAudio(fmt.sample_rate_hz, fmt.channels, fmt.bits_per_sample, blob[data_start:])
