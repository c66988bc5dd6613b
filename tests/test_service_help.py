"""Every service's command line: --help lists the settings its code reads; its README names them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from books.settings import load_settings as books_settings
from devstack.gateway.settings import load_settings as gateway_settings
from servicekit.cli import settings_read_by
from servicekit.settings import Env
from testkit.process import console_script
from tts_backend.settings import load_settings as backend_settings
from tts_v1.settings import load_settings as v1_settings
from tts_v2.settings import load_settings as v2_settings

ROOT = Path(__file__).resolve().parents[1]

# Where each service's settings are documented: the README next to its code.
READMES: dict[str, Path] = {
    "books": ROOT / "services/books/README.md",
    "tts-backend": ROOT / "services/tts_backend/README.md",
    "tts-v1": ROOT / "libs/speech_front/README.md",
    "tts-v2": ROOT / "libs/speech_front/README.md",
    "local-gateway": ROOT / "tools/devstack/README.md",
}

SERVICES: dict[str, Callable[[Env], object]] = {
    "books": books_settings,
    "tts-backend": backend_settings,
    "tts-v1": v1_settings,
    "tts-v2": v2_settings,
    "local-gateway": gateway_settings,
}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [console_script(args[0]), *args[1:]], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("program", SERVICES)
def test_help_lists_every_setting_the_loader_reads(program: str) -> None:
    variables = settings_read_by(SERVICES[program])
    assert {"HOST", "PORT"} <= {v.name for v in variables}
    result = _run(program, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {program} [-h]")
    for variable in variables:
        assert f"  {variable.name} " in result.stdout, variable
    assert "DD_TRACE_ENABLED" in result.stdout


@pytest.mark.parametrize("program", SERVICES)
def test_an_argument_is_refused_in_one_line_not_ignored(program: str) -> None:
    result = _run(program, "--port", "9")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"{program}: unexpected argument '--port': settings come from environment "
        f"variables (see {program} --help)"
    ]


@pytest.mark.parametrize("program", SERVICES)
def test_readme_names_every_setting(program: str) -> None:
    readme = READMES[program].read_text()
    missing = [v.name for v in settings_read_by(SERVICES[program]) if f"`{v.name}`" not in readme]
    where = READMES[program].relative_to(ROOT)
    assert not missing, f"{where} does not name {program}'s settings {missing}"
