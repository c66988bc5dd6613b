"""pcm_wav: the header, the lenient walker (parse_wav) and the strict reader (read_wav)."""

from __future__ import annotations

import re
import struct

import pytest
from pcm_wav import HEADER_SIZE, PcmFormat, WavError, parse_wav, read_wav, wav_header

MONO_22K = PcmFormat(22050)


def chunk(chunk_id: bytes, body: bytes) -> bytes:
    """One RIFF chunk, padded to an even size as RIFF wants."""
    return chunk_id + struct.pack("<I", len(body)) + body + b"\x00" * (len(body) & 1)


def riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def fmt_chunk(fmt: PcmFormat, audio_format: int = 1) -> bytes:
    return chunk(
        b"fmt ",
        struct.pack(
            "<HHIIHH",
            audio_format,
            fmt.channels,
            fmt.sample_rate_hz,
            fmt.byte_rate,
            fmt.block_align,
            fmt.bits_per_sample,
        ),
    )


def test_the_header_is_44_bytes_and_reads_back() -> None:
    stereo = PcmFormat(48000, channels=2, bits_per_sample=24)
    header = wav_header(stereo, 600)
    assert len(header) == HEADER_SIZE
    assert header[:4] == b"RIFF" and header[8:16] == b"WAVEfmt " and header[36:40] == b"data"
    assert int.from_bytes(header[4:8], "little") == 36 + 600
    info = parse_wav(header)  # the header alone is enough for the lenient walker
    assert info is not None
    assert (info.fmt, info.data_size) == (stereo, 600)
    assert stereo.byte_rate == 288000 and stereo.block_align == 6
    audio = read_wav(header + bytes(600))
    assert (audio.fmt, audio.frames) == (PcmFormat(48000, 2, 24), 100)


def test_parse_wav_skips_other_chunks_and_their_padding() -> None:
    pcm = b"\x01\x00" * 11025  # half a second of mono 16-bit at 22050 Hz
    blob = riff(
        chunk(b"LIST", b"INFOodd"),
        fmt_chunk(MONO_22K),
        chunk(b"fact", b"1234"),
        chunk(b"data", pcm),
    )
    info = parse_wav(blob)
    assert info is not None
    assert (info.fmt, info.data_size, info.duration_ms) == (MONO_22K, len(pcm), 500)
    # Lenient: any prefix that reaches the data chunk's header is enough.
    assert parse_wav(blob[: blob.index(b"data") + 8]) == info
    # And read_wav accepts the same file: the extra chunks come before the data.
    assert read_wav(blob).pcm == pcm


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"RIFF\x00\x00\x00\x00WAVX",
        wav_header(MONO_22K, 0)[:40],  # stops inside the data chunk's header
        riff(chunk(b"data", b"\x00\x00"), fmt_chunk(MONO_22K)),  # data before fmt
        riff(fmt_chunk(MONO_22K)),  # no data chunk
    ],
    ids=["empty", "not-wave", "cut-header", "data-before-fmt", "no-data"],
)
def test_parse_wav_says_none_for_what_is_not_a_wav(blob: bytes) -> None:
    assert parse_wav(blob) is None


def test_a_zero_byte_rate_has_no_duration() -> None:
    info = parse_wav(wav_header(PcmFormat(0), 100))
    assert info is not None and info.duration_ms == 0


def test_wav_reader_accepts_consistent_files_only() -> None:
    good = wav_header(MONO_22K, 4) + b"\x01\x00\xff\x7f"
    audio = read_wav(good)
    assert (audio.fmt, audio.frames) == (PcmFormat(22050, 1, 16), 2)
    assert audio.duration_seconds == pytest.approx(2 / 22050)
    for bad in (good[:-1], good + b"\x00\x00", b"RIFX" + good[4:], good[:40]):
        with pytest.raises(WavError):
            read_wav(bad)


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (riff(fmt_chunk(MONO_22K, audio_format=3), chunk(b"data", bytes(4))), "not PCM (format 3)"),
        (riff(fmt_chunk(PcmFormat(22050, 1, 12)), chunk(b"data", bytes(4))), "bad fmt values"),
        (riff(fmt_chunk(PcmFormat(22050, 0)), chunk(b"data", bytes(4))), "bad fmt values"),
        (
            riff(fmt_chunk(PcmFormat(22050, 2)), chunk(b"data", bytes(6))),
            "not a whole number of frames",
        ),
        (riff(fmt_chunk(MONO_22K), chunk(b"data", bytes(4)), chunk(b"LIST", b"x")), "end of"),
        (wav_header(MONO_22K, 4) + bytes(4) + b"\x00\x00", "RIFF size 40 does not match"),
    ],
    ids=["float", "12-bit", "no-channels", "half-frame", "chunk-after-data", "riff-size"],
)
def test_wav_reader_says_what_does_not_add_up(blob: bytes, reason: str) -> None:
    with pytest.raises(WavError, match=re.escape(reason)):
        read_wav(blob)
