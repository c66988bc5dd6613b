"""The longest audio one request may produce, the same for Synthesize and StreamSynthesize.

The text limit alone does not bound the audio: 5,000 characters of digits
("1234567. " spoken as words) last 40 minutes. The bound is a duration
(``TTS_MAX_AUDIO_S``), tightened where needed so that a unary reply (WAV
header + PCM) always fits the gRPC send limit (``TTS_MAX_SEND_BYTES``) at the
request's sample rate. It is checked segment by segment as the audio is made:
the segment that would cross it is not sent, the call ends with OUT_OF_RANGE,
and no more of the text is synthesized, so neither the work nor the memory of
a request can exceed what the limit allows.
"""

from __future__ import annotations

from dataclasses import dataclass

from tts_backend.engines.base import EngineError

BYTES_PER_SAMPLE = 2
# Room left in a unary reply for the WAV header and the other response fields.
REPLY_OVERHEAD_BYTES = 64 * 1024


class AudioTooLong(EngineError):
    """The audio passed the limit: OUT_OF_RANGE, a request that will never succeed as is."""

    def __init__(self, message: str) -> None:
        super().__init__("OUT_OF_RANGE", message)


@dataclass(frozen=True)
class AudioLimit:
    max_seconds: float
    max_reply_bytes: int

    def max_samples(self, sample_rate_hz: int) -> int:
        by_duration = int(self.max_seconds * sample_rate_hz)
        by_reply = (self.max_reply_bytes - REPLY_OVERHEAD_BYTES) // BYTES_PER_SAMPLE
        return max(0, min(by_duration, by_reply))

    def check(self, samples: int, sample_rate_hz: int) -> None:
        """Raise :class:`AudioTooLong` if ``samples`` are more than one request may produce."""
        limit = self.max_samples(sample_rate_hz)
        if samples > limit:
            seconds = limit / sample_rate_hz
            raise AudioTooLong(
                f"the audio would be longer than {seconds:.0f} s, the most one request may "
                f"produce at {sample_rate_hz} Hz (TTS_MAX_AUDIO_S); shorten the text"
            )
