"""The stack's pure parts: ports, per-service settings, log lines, restart backoff, --clean."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from devstack.cli import build_parser, config_from_args, wipe_data_dir
from devstack.logview import Prefixer, render
from devstack.ports import port_problems
from devstack.probes import is_ready
from devstack.services import Ports, Probe, StackConfig, build_specs
from devstack.supervisor import MAX_EXITS, Child, describe_exit
from testkit.devstack import STACK_SERVICES
from testkit.process import free_port


def _config(tmp_path: Path, **kwargs: object) -> StackConfig:
    return StackConfig(Ports(), tmp_path / "data", Path("k8s/istio"), **kwargs)  # type: ignore[arg-type]


def test_defaults_and_port_base() -> None:
    args = build_parser().parse_args(["up"])
    config = config_from_args(args)
    assert config.ports == Ports(8000, 8081, 8082, 8083, 50051, 8126, 4318, 4317)
    assert config.data_dir == Path("data") and config.gateway_url == "http://127.0.0.1:8000"
    args = build_parser().parse_args(["up", "--port-base", "9000", "--books-port", "9999"])
    assert config_from_args(args).ports == Ports(9000, 9999, 9002, 9003, 9004, 9005, 9006, 9007)


def test_each_service_gets_its_settings(tmp_path: Path) -> None:
    specs = {spec.name: spec for spec in build_specs(_config(tmp_path, with_client=True))}
    assert list(specs) == [*STACK_SERVICES, "client"]
    data = (tmp_path / "data").resolve()
    assert specs["books"].env["BOOKS_DB_PATH"] == str(data / "books.db")
    for version in ("v1", "v2"):
        env = specs[f"tts-{version}"].env
        assert (env["DD_SERVICE"], env["DD_VERSION"]) == ("text-to-speech", version)
        assert env["BOOKS_URL"] == "http://127.0.0.1:8081"
        assert env["TTS_BACKEND_ADDR"] == "127.0.0.1:50051"
        assert env["AUDIO_DIR"] == str(data / "audio")
    for name in ("books", "tts-backend", "tts-v1", "tts-v2", "local-gateway", "client"):
        assert specs[name].env["DD_TRACE_AGENT_URL"] == "http://127.0.0.1:8126"
        assert specs[name].env["DD_ENV"] == "local"
    assert specs["local-gateway"].env["GATEWAY_UPSTREAMS"] == (
        "books=http://127.0.0.1:8081,text-to-speech/v1=http://127.0.0.1:8082,"
        "text-to-speech/v2=http://127.0.0.1:8083"
    )
    assert specs["tts-backend"].probe is not None and specs["tts-backend"].probe.kind == "grpc"
    assert not specs["client"].restart and specs["books"].restart
    assert specs["client"].start_when_ready and specs["apm-test-agent"].stop_last


def test_port_problems_name_the_service() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        free = free_port()
        assert port_problems({"books": busy, "tts-v1": free, "tts-v2": free}) == [
            f"port {busy} (books) is already in use",
            f"port {free} is given to both tts-v1 and tts-v2",
        ]


def test_json_log_lines_are_rendered_readably() -> None:
    line = json.dumps(
        {
            "timestamp": "2026-11-26T08:00:01.123Z",
            "status": "info",
            "logger.name": "x",
            "message": "GET / 200",
            "service": "books",
            "http.status_code": 200,
        }
    )
    assert render(line + "\n") == "08:00:01.123 INFO GET / 200 http.status_code=200"
    assert render("plain text\n") == "plain text"
    assert render("{not json") == "{not json"
    assert Prefixer(["books", "tts-backend"], colour=False).prefix("books") == "books       | "


def test_exit_descriptions() -> None:
    assert describe_exit(0) == "exit status 0"
    assert describe_exit(-9) == "killed by SIGKILL"


def test_restart_backoff_grows_then_gives_up(tmp_path: Path) -> None:
    spec = build_specs(_config(tmp_path))[1]
    child = Child(spec, output=None, cwd=tmp_path)  # type: ignore[arg-type]
    child.started_at = time.monotonic()  # each exit comes right after its start
    delays = [child.next_backoff() for _ in range(MAX_EXITS)]
    assert delays[:-1] == [0.5, 1.0, 2.0, 4.0]
    assert delays[-1] is None
    stable = Child(spec, output=None, cwd=tmp_path)  # type: ignore[arg-type]
    stable.started_at = time.monotonic()
    assert [stable.next_backoff() for _ in range(2)] == [0.5, 1.0]
    stable.started_at -= 120  # up for two minutes: the backoff starts over
    assert stable.next_backoff() == 0.5


def test_clean_refuses_the_working_directory_and_wipes_a_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="refusing"):
        wipe_data_dir(Path("."))
    data = tmp_path / "data"
    (data / "audio").mkdir(parents=True)
    (data / "books.db").write_text("x")
    wipe_data_dir(Path("data"))
    assert not data.exists()


async def test_probes_against_real_listeners(upstreams) -> None:
    server = await upstreams("one")
    assert await is_ready(Probe("http", f"{server.url}/"))
    server.fail_first, server.fail_status = 1, 503
    assert not await is_ready(Probe("http", f"{server.url}/fail"))
    assert await is_ready(Probe("tcp", f"127.0.0.1:{server.port}"))
    closed = free_port()
    assert not await is_ready(Probe("http", f"http://127.0.0.1:{closed}/readyz"))
    assert not await is_ready(Probe("tcp", f"127.0.0.1:{closed}"))
    assert not await is_ready(Probe("grpc", f"127.0.0.1:{closed}"))
