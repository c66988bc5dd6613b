"""Settings of the text-to-speech fronts."""

from __future__ import annotations

from pathlib import Path

import pytest
from servicekit.settings import Env, SettingsError
from speech_front.settings import load_front_settings
from tts_v1.settings import load_settings as load_v1
from tts_v2.settings import load_settings as load_v2


def test_defaults() -> None:
    v1 = load_v1(Env({}))
    v2 = load_v2(Env({}))
    assert (v1.version, v1.port, v2.version, v2.port) == ("v1", 8082, "v2", 8083)
    assert v1.host == "127.0.0.1"
    assert v1.books_url == "http://127.0.0.1:8081"
    assert v1.backend_addr == "127.0.0.1:50051"
    assert v1.audio_dir == Path("data/audio")
    assert v1.max_text_chars == 5000
    assert v1.tts_engine == "espeak"


def test_values_from_the_environment() -> None:
    env = Env(
        {
            "HOST": "0.0.0.0",
            "PORT": "8080",
            "BOOKS_URL": "http://books/",
            "TTS_BACKEND_ADDR": "tts-backend:50051",
            "AUDIO_DIR": "/var/audio",
            "BOOKS_TIMEOUT_S": "0.25",
            "TTS_TIMEOUT_S": "12",
            "MAX_TEXT_CHARS": "100",
        }
    )
    settings = load_front_settings(env, version="v2", default_port=8083)
    assert settings.port == 8080
    assert settings.books_url == "http://books"
    assert settings.backend_addr == "tts-backend:50051"
    assert settings.audio_dir == Path("/var/audio")
    assert (settings.books_timeout_s, settings.tts_timeout_s) == (0.25, 12.0)
    assert settings.max_text_chars == 100


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "0"),
        ("BOOKS_URL", "books:8081"),
        ("TTS_BACKEND_ADDR", "no-port"),
        ("BOOKS_TIMEOUT_S", "0"),
        ("TTS_TIMEOUT_S", "soon"),
        ("MAX_TEXT_CHARS", "5001"),
        ("MAX_BODY_BYTES", "10"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_v1(Env({name: value}))
    assert caught.value.name == name
