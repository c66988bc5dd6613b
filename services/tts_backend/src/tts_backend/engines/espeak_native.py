"""eSpeak NG through ctypes: the shared library and data of the ``espeakng-loader`` wheel.

One :class:`EspeakNative` per process: the library keeps global state and is
not thread-safe, so callers serialize every call (the worker pool gives each
worker process its own instance). Output is 16-bit mono PCM at the library's
native rate (22050 Hz).

eSpeak NG carries a little state from one utterance to the next (pitch flutter
phase, automatic gain, random noise seeds), so the same text would come out
slightly different depending on what was spoken before. :meth:`synthesize`
resets that state first, which makes each segment a pure function of
(text, voice, rate): a streamed request and a unary one give identical PCM
whichever worker spoke which sentence.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import espeakng_loader
from tts_backend.engines.elf_symbols import find_symbol, read_symbols

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_END_PAUSE = 0x1000
_PARAM_RATE = 1
_EE_OK = 0

# Internal statics that survive between utterances, with their initial values.
_STATE_RESETS = {"Flutter_ix": 0, "agc": 256, "cycle_count": 0}

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _VoiceStruct(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


@dataclass(frozen=True)
class NativeVoice:
    """One eSpeak NG voice as the library lists it."""

    identifier: str  # e.g. "gmw/en-US", what SetVoiceByName accepts
    description: str  # e.g. "English (America)"
    languages: tuple[tuple[int, str], ...]  # (priority, code); lower priority = better
    gender: int  # 0 none, 1 male, 2 female


class EspeakError(RuntimeError):
    """The library refused a call."""


class SynthesisAborted(Exception):
    """``should_abort`` asked to stop in the middle of a segment."""


class EspeakNative:
    """The loaded library, initialised for synchronous synthesis."""

    def __init__(self) -> None:
        path = espeakng_loader.get_library_path()
        self._lib = ctypes.CDLL(path)
        self._declare_signatures()
        rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0
        )
        if rate <= 0:
            raise EspeakError(f"espeak_Initialize failed ({rate})")
        self.sample_rate: int = rate
        self._buffer = bytearray()
        self._should_abort: Callable[[], bool] = _never
        self._callback = _SynthCallback(self._on_samples)
        self._lib.espeak_SetSynthCallback(self._callback)
        self._libc = ctypes.CDLL(None)
        self._state_addresses = self._locate_state(path)
        self._owner = threading.get_ident()

    @property
    def deterministic(self) -> bool:
        """True when the inter-utterance state could be located and is reset."""
        return len(self._state_addresses) == len(_STATE_RESETS)

    def list_voices(self) -> list[NativeVoice]:
        voices = self._lib.espeak_ListVoices(None)
        result = []
        index = 0
        while voices[index]:
            voice = voices[index].contents
            result.append(
                NativeVoice(
                    identifier=(voice.identifier or b"").decode(),
                    description=(voice.name or b"").decode().strip(),
                    languages=tuple(_languages(voice.languages)),
                    gender=int(voice.gender),
                )
            )
            index += 1
        return result

    def synthesize(
        self,
        text: str,
        voice_identifier: str,
        words_per_minute: int,
        should_abort: Callable[[], bool] = lambda: False,
    ) -> bytes:
        """PCM (16-bit LE mono) for ``text``; raises SynthesisAborted on request."""
        if threading.get_ident() != self._owner:
            raise EspeakError("eSpeak NG used from a second thread")
        status = self._lib.espeak_SetVoiceByName(voice_identifier.encode())
        if status != _EE_OK:
            raise EspeakError(f"unknown voice {voice_identifier!r} ({status})")
        self._lib.espeak_SetParameter(_PARAM_RATE, words_per_minute, 0)
        self._reset_state()
        self._buffer = bytearray()
        self._should_abort = should_abort
        encoded = text.encode()
        try:
            status = self._lib.espeak_Synth(
                encoded,
                len(encoded) + 1,
                0,
                _POS_CHARACTER,
                0,
                _CHARS_UTF8 | _END_PAUSE,
                None,
                None,
            )
            aborted = should_abort()
        finally:
            self._should_abort = _never
        if aborted:
            raise SynthesisAborted
        if status != _EE_OK:
            raise EspeakError(f"espeak_Synth failed ({status})")
        return bytes(self._buffer)

    def _on_samples(self, samples: Any, count: int, _events: object) -> int:
        if count > 0 and samples:
            self._buffer += ctypes.string_at(samples, count * 2)
        return 1 if self._should_abort() else 0

    def _reset_state(self) -> None:
        for name, address in self._state_addresses.items():
            ctypes.c_int.from_address(address).value = _STATE_RESETS[name]
        self._libc.srand(1)
        self._lib.espeak_ng_SetRandSeed(1)

    def _locate_state(self, path: str) -> dict[str, int]:
        symbols = read_symbols(path)
        anchor = symbols.get("espeak_Synth")
        loaded = ctypes.cast(self._lib.espeak_Synth, ctypes.c_void_p).value
        if anchor is None or loaded is None:
            return {}
        base = loaded - anchor
        addresses = {}
        for name in _STATE_RESETS:
            offset = find_symbol(symbols, name)
            if offset is not None:
                addresses[name] = base + offset
        return addresses

    def _declare_signatures(self) -> None:
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_VoiceStruct))
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None


def _never() -> bool:
    return False


def _languages(address: int | None) -> list[tuple[int, str]]:
    """Decode eSpeak's language list: (priority byte, NUL-terminated code)*, then 0."""
    result: list[tuple[int, str]] = []
    if not address:
        return result
    while True:
        priority = ctypes.c_ubyte.from_address(address).value
        if priority == 0:
            return result
        code = ctypes.string_at(address + 1)
        result.append((priority, code.decode(errors="replace")))
        address += len(code) + 2
