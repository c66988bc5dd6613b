"""Turn a tts.v1 request into engine parameters, or a status with a message.

Checks that need no engine: text present and within the limit, speaking rate
in range, a supported encoding, a sane sample rate and language code. Voice
and sample-rate support are the engine's to check (:meth:`Engine.prepare`).
"""

from __future__ import annotations

import math
import re

from tts.v1 import tts_pb2

from tts_backend.engines.base import SynthesisParams

MIN_SPEAKING_RATE = 0.25
MAX_SPEAKING_RATE = 4.0
MAX_VOICE_CHARS = 200
MAX_SAMPLE_RATE = 192_000
_LANGUAGE_CODE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
SUPPORTED_ENCODINGS = (tts_pb2.AUDIO_ENCODING_UNSPECIFIED, tts_pb2.LINEAR16)


class RequestError(Exception):
    """Bad input; ``code`` is a grpc.StatusCode name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message: str) -> RequestError:
    return RequestError("INVALID_ARGUMENT", message)


def validate_synthesize(
    request: tts_pb2.SynthesizeRequest, max_text_chars: int, default_voice: str = ""
) -> SynthesisParams:
    text = request.text
    if not text.strip():
        raise _invalid("text is empty")
    if len(text) > max_text_chars:
        raise _invalid(f"text has {len(text)} characters; the limit is {max_text_chars}")
    if "\x00" in text:
        raise _invalid("text contains a NUL character")
    rate = request.speaking_rate or 1.0
    if not math.isfinite(rate) or not MIN_SPEAKING_RATE <= rate <= MAX_SPEAKING_RATE:
        raise _invalid(
            f"speaking_rate {request.speaking_rate} is out of range "
            f"{MIN_SPEAKING_RATE}..{MAX_SPEAKING_RATE} (0 means 1.0)"
        )
    if request.audio_encoding not in SUPPORTED_ENCODINGS:
        raise _invalid(f"audio_encoding {request.audio_encoding} is not supported; use LINEAR16")
    if not 0 <= request.sample_rate_hertz <= MAX_SAMPLE_RATE:
        raise _invalid(f"sample_rate_hertz {request.sample_rate_hertz} is out of range")
    if len(request.voice) > MAX_VOICE_CHARS:
        raise _invalid(f"voice name longer than {MAX_VOICE_CHARS} characters")
    language = validate_language_code(request.language_code)
    return SynthesisParams(
        text=text,
        voice=request.voice.strip() or (default_voice if not language else ""),
        language_code=language,
        speaking_rate=rate,
        sample_rate_hertz=request.sample_rate_hertz,
    )


def validate_language_code(code: str) -> str:
    code = code.strip()
    if code and not _LANGUAGE_CODE.match(code):
        raise _invalid(f"language_code {code[:40]!r} is not a BCP-47 tag like en-US")
    return code
