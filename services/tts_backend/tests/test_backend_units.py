"""Pure parts of tts-backend: text splitting, validation, error mapping (WAV: libs/pcm_wav)."""

from __future__ import annotations

import pytest
from tts.v1 import tts_pb2
from tts_backend.engines.espeak import language_matches, words_per_minute
from tts_backend.text_split import split_sentences
from tts_backend.validation import RequestError, validate_synthesize


def test_split_at_sentence_ends_but_not_inside_abbreviations() -> None:
    text = 'Hello world. Is it e.g. fine? "Yes." Then\nnew line… Ok'
    assert split_sentences(text) == [
        "Hello world.",
        "Is it e.g. fine?",
        '"Yes."',
        "Then",
        "new line…",
        "Ok",
    ]


def test_long_sentences_are_cut_at_clauses_then_spaces() -> None:
    text = "one, " * 100 + "x" * 30
    segments = split_sentences(text, max_chars=50)
    assert all(len(s) <= 50 for s in segments)
    assert "".join(segments).replace(" ", "") == text.replace(" ", "")
    assert split_sentences("y" * 120, max_chars=50) == ["y" * 50, "y" * 50, "y" * 20]
    assert split_sentences(" \n ") == []


def test_validation_defaults_and_limits() -> None:
    params = validate_synthesize(tts_pb2.SynthesizeRequest(text="Hi."), 10, "en-gb")
    assert (params.voice, params.speaking_rate, params.sample_rate_hertz) == ("en-gb", 1.0, 0)
    by_language = validate_synthesize(
        tts_pb2.SynthesizeRequest(text="Hi.", language_code="de"), 10, "en-gb"
    )
    assert (by_language.voice, by_language.language_code) == ("", "de")
    with pytest.raises(RequestError, match="limit is 10"):
        validate_synthesize(tts_pb2.SynthesizeRequest(text="x" * 11), 10)
    edge = validate_synthesize(tts_pb2.SynthesizeRequest(text="x", speaking_rate=4.0), 10)
    assert edge.speaking_rate == 4.0


def test_rate_and_language_helpers() -> None:
    assert words_per_minute(1.0) == 175 and words_per_minute(2.0) == 350
    assert language_matches("en-us", "en") and language_matches("en-us", "EN-US")
    assert not language_matches("en-us", "en-gb") and not language_matches("eng", "en")


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_google_errors_map_to_grpc_statuses() -> None:
    from google.api_core import exceptions
    from tts_backend.engines.google import map_google_error

    cases = {
        exceptions.InvalidArgument("x"): "INVALID_ARGUMENT",
        exceptions.NotFound("x"): "NOT_FOUND",
        exceptions.PermissionDenied("x"): "PERMISSION_DENIED",
        exceptions.Unauthenticated("x"): "PERMISSION_DENIED",
        exceptions.ResourceExhausted("x"): "RESOURCE_EXHAUSTED",
        exceptions.ServiceUnavailable("x"): "UNAVAILABLE",
        exceptions.DeadlineExceeded("x"): "DEADLINE_EXCEEDED",
        exceptions.InternalServerError("x"): "UNAVAILABLE",
    }
    for error, code in cases.items():
        assert map_google_error(error).code == code
