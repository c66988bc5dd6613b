"""Settings of text-to-speech v2: the shared front settings, default port 8083."""

from __future__ import annotations

from servicekit.settings import Env
from speech_front.settings import FrontSettings, load_front_settings

VERSION = "v2"
DEFAULT_PORT = 8083


def load_settings(env: Env | None = None) -> FrontSettings:
    return load_front_settings(env, version=VERSION, default_port=DEFAULT_PORT)
