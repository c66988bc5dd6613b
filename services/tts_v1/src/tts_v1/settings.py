"""Settings of text-to-speech v1: the shared front settings, default port 8082."""

from __future__ import annotations

from servicekit.settings import Env
from speech_front.settings import FrontSettings, load_front_settings

VERSION = "v1"
DEFAULT_PORT = 8082


def load_settings(env: Env | None = None) -> FrontSettings:
    return load_front_settings(env, version=VERSION, default_port=DEFAULT_PORT)
