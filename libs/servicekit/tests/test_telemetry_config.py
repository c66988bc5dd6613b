"""Which tracing mode a process picks, and unified service tags, from the environment."""

from __future__ import annotations

import subprocess
import sys

import pytest
from servicekit.settings import Env, SettingsError
from servicekit.telemetry_settings import TelemetrySettings, TraceMode, load_telemetry_settings


def settings_for(environ: dict[str, str], version: str | None = "1.0") -> TelemetrySettings:
    return load_telemetry_settings("books", version, Env(environ))


def test_datadog_is_the_default_with_local_env_and_code_defaults() -> None:
    settings = settings_for({})
    assert settings.mode is TraceMode.DATADOG
    assert (settings.service, settings.env, settings.version) == ("books", "local", "1.0")
    assert settings.logs_injection and not settings.profiling


def test_deployment_tags_win_over_code_defaults() -> None:
    environ = {"DD_SERVICE": "text-to-speech", "DD_ENV": "prod", "DD_VERSION": "v2"}
    settings = settings_for(environ)
    assert (settings.service, settings.env, settings.version) == ("text-to-speech", "prod", "v2")


@pytest.mark.parametrize(
    ("environ", "mode"),
    [
        ({"DD_TRACE_ENABLED": "false"}, TraceMode.OFF),
        (
            {"DD_TRACE_ENABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
            TraceMode.OTLP,
        ),
        (
            {"DD_TRACE_ENABLED": "false", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/t"},
            TraceMode.OTLP,
        ),
        # Datadog wins when both are configured: one exporter per process.
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, TraceMode.DATADOG),
    ],
)
def test_mode_follows_dd_trace_enabled_then_otlp_endpoint(
    environ: dict[str, str], mode: TraceMode
) -> None:
    assert settings_for(environ).mode is mode


def test_profiler_is_off_unless_asked() -> None:
    assert settings_for({"DD_PROFILING_ENABLED": "true"}).profiling


def test_bad_switch_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="DD_TRACE_ENABLED"):
        settings_for({"DD_TRACE_ENABLED": "maybe"})


def test_configure_telemetry_exits_2_with_one_line_on_a_bad_value() -> None:
    code = "from servicekit.telemetry import configure_telemetry; configure_telemetry('books')"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"DD_LOGS_INJECTION": "sometimes", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "books: invalid setting DD_LOGS_INJECTION='sometimes': expected true or false"
    ]
