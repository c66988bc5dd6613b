"""servicekit.scripts: the console-script lookup the stack and the test harness share."""

from __future__ import annotations

import sys
from pathlib import Path

from servicekit.scripts import console_script


def test_a_script_of_the_venv_is_its_full_path() -> None:
    # `stack` is devstack's console script, installed in this venv by `uv sync`.
    found = console_script("stack")
    assert Path(found) == Path(sys.executable).parent / "stack"
    assert Path(found).is_file()


def test_a_script_the_venv_lacks_is_left_to_path() -> None:
    assert console_script("no-such-script-in-this-venv") == "no-such-script-in-this-venv"
