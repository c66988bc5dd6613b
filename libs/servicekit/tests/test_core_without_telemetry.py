"""servicekit's core imports and answers ``--help`` without its `telemetry` extra.

A tool that needs ``Env`` or ``parse_duration`` (repocheck) installs plain
``servicekit``: no ddtrace, no OpenTelemetry. Each check runs a fresh Python
whose import system refuses ``ddtrace`` and ``opentelemetry`` (a meta-path
finder raising ModuleNotFoundError, as if they were not installed), so an
import-time dependency anywhere in the core fails it; ``servicekit.telemetry``
itself must fail there, naming the extra.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import servicekit
from servicekit import telemetry

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

BLOCKED = ("ddtrace", "opentelemetry")

# Runs the code after it with ddtrace and opentelemetry unimportable; prints
# the blocked modules that got into sys.modules anyway (none, or it failed).
HARNESS = f"""
import importlib.abc, json, sys

BLOCKED = {BLOCKED!r}


class Uninstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
        return None


sys.meta_path.insert(0, Uninstalled())
"""

# The core: every module of the package but the two that belong to extras.
EXTRAS = {"telemetry", "http"}
CORE = sorted(
    f"servicekit.{module.name}"
    for module in pkgutil.iter_modules(servicekit.__path__)
    if module.name not in EXTRAS
)


def run_without_telemetry(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", HARNESS + code, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


IMPORT_ALL = """
import importlib
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)))
"""


def test_the_core_module_list_is_the_package_minus_the_extras() -> None:
    # So the import test below cannot pass on an empty or stale list.
    assert {
        "servicekit.cli",
        "servicekit.durations",
        "servicekit.logs",
        "servicekit.main",
        "servicekit.prefork",
        "servicekit.probes",
        "servicekit.settings",
        "servicekit.telemetry_settings",
        "servicekit.urls",
    } <= set(CORE)
    assert not any(name.startswith(("servicekit.telemetry.", "servicekit.http")) for name in CORE)


def test_every_core_module_and_repocheck_import_without_ddtrace_or_opentelemetry() -> None:
    result = run_without_telemetry(IMPORT_ALL, *CORE, "repocheck.__main__")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_help_lists_the_tracing_settings_without_the_extra() -> None:
    # The start-up path up to --help: settings and the DD_* table, no tracing library.
    code = """
from servicekit.main import run_service

sys.argv = ["probe", "--help"]
run_service("probe", "A probe.", lambda env: env.text("GREETING", "hi"), print)
"""
    result = run_without_telemetry(code)
    assert result.returncode == 0, result.stderr
    assert "GREETING" in result.stdout
    assert "DD_TRACE_ENABLED" in result.stdout
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in result.stdout


def test_the_harness_bites_servicekit_telemetry_needs_the_extra() -> None:
    result = run_without_telemetry(IMPORT_ALL, "servicekit.telemetry")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: servicekit.telemetry needs servicekit's `telemetry` extra")
    assert "ddtrace" in last and "opentelemetry-sdk" in last


def test_starting_a_service_without_the_extra_names_it() -> None:
    code = """
from servicekit.main import run_service

sys.argv = ["probe"]
run_service("probe", "A probe.", lambda env: env.text("GREETING", "hi"), print)
"""
    result = run_without_telemetry(code)
    assert result.returncode == 1
    assert "servicekit[telemetry]" in result.stderr.strip().splitlines()[-1]


def test_the_extra_check_names_what_the_extra_installs() -> None:
    extra = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]["telemetry"]
    declared = {requirement.split(">")[0].split("=")[0].strip() for requirement in extra}
    assert set(telemetry.EXTRA_PACKAGES.values()) == declared
