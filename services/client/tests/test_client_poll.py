"""`client poll` as a real process against a real HTTP server on loopback.

The server (contract_server.py) follows the services' API contract and answers
text-to-speech requests with v2 for 3 of every 10, so the split the client
reports can be checked exactly against what the server counted.
"""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from client_runs import HERE, ScriptServer, run_client, started_client
from polling_client.__main__ import main
from testkit.process import free_port


class ContractServer(ScriptServer):
    def __init__(self, *flags: str) -> None:
        super().__init__(HERE / "contract_server.py", "/__stats", *flags)

    def stats(self) -> dict[str, int]:
        stats: dict[str, int] = self.get_json("/__stats")
        return stats


def run_poll(gateway: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_client("poll", "--gateway", gateway, *args, timeout=60.0)


@pytest.fixture
def server() -> Iterator[ContractServer]:
    with ContractServer() as running:
        yield running


def test_poll_tallies_the_split_by_version_header(server: ContractServer) -> None:
    result = run_poll(server.url, "--count=200", "--rate=0", "--format=json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    stats = server.stats()
    versions = report["versions"]
    assert stats["bad"] == 0  # every request followed the contract
    assert report["requests"] == 200 and report["errors"] == 0
    # The server also answered the start-up reachability check (request 0, a v2).
    assert versions["v1"]["requests"] == stats["v1"]
    assert versions["v2"]["requests"] == stats["v2"] - 1
    assert versions["books"]["requests"] == stats["books"] == 40  # 2 of every 10
    assert versions["v2"]["share"] == pytest.approx(0.3, abs=0.02)
    assert versions["v1"]["p50_ms"] > 0


def test_poll_prints_a_table_and_plain_progress_lines(server: ContractServer) -> None:
    result = run_poll(server.url, "--count=50", "--rate=500")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split()[:4] == ["version", "requests", "share", "errors"]
    assert any(row.startswith("v1 ") for row in rows)
    assert any(row.startswith("v2 ") for row in rows)
    assert "error rate 0.00% <= threshold 1.00%: OK" in result.stdout
    assert "\r" not in result.stderr  # not a terminal: plain lines
    assert "50 req" in result.stderr.splitlines()[-1]


def test_poll_fails_when_the_error_rate_passes_the_threshold() -> None:
    with ContractServer("--fail-every", "5") as failing:
        strict = run_poll(failing.url, "--count=100", "--rate=0", "--max-error-rate=0.05")
        lenient = run_poll(
            failing.url, "--count=100", "--rate=0", "--max-error-rate=0.5", "--format=json"
        )
    assert strict.returncode == 1, strict.stderr
    assert "FAILED" in strict.stdout and "HTTP 503" in strict.stdout
    assert lenient.returncode == 0, lenient.stderr
    report = json.loads(lenient.stdout)
    assert 0.05 < report["error_rate"] <= 0.5
    assert report["error_reasons"]["HTTP 503"] == report["errors"]


def test_poll_sends_books_requests_to_their_own_url() -> None:
    with ContractServer("--role", "tts") as fronts, ContractServer("--role", "books") as books:
        result = run_poll(
            fronts.url, "--books", books.url, "--count=60", "--rate=0", "--format=json"
        )
        fronts_stats, books_stats = fronts.stats(), books.stats()
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["errors"] == 0
    assert books_stats["books"] == 12 + 1  # plus the reachability check
    assert books_stats["tts"] == 0 and fronts_stats["books"] == 0


def test_poll_with_a_duration_stops_and_never_exceeds_the_rate(server: ContractServer) -> None:
    result = run_poll(server.url, "--duration=1s", "--rate=40", "--format=json")
    assert result.returncode == 0, result.stderr
    requests = json.loads(result.stdout)["requests"]
    assert 0 < requests <= 40 * 1 + 5  # the pace plus at most one burst


def _wait_until_served(server: ContractServer, count: int) -> int:
    """Text-to-speech requests the server answered, once ``count`` (or after 30 s)."""
    deadline = time.monotonic() + 30
    while server.stats()["tts"] < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return server.stats()["tts"]


def test_sigint_stops_polling_and_prints_the_table(server: ContractServer) -> None:
    with started_client("poll", "--gateway", server.url, "--rate", "100") as process:
        _wait_until_served(server, 20)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "error rate 0.00%" in stdout


def test_wait_retries_until_the_gateway_answers() -> None:
    server = ContractServer()  # its port is chosen; nothing listens yet
    with started_client(
        *("poll", "--gateway", server.url, "--wait=60s", "--count=20", "--rate=0", "--format=json")
    ) as process:
        assert process.stderr is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stderr, selectors.EVENT_READ)
            assert selector.select(timeout=60), "the client said nothing"
        notice = process.stderr.readline()
        assert notice.startswith(f"waiting up to 60s for the gateway at {server.url}")
        with server:
            stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert json.loads(stdout)["requests"] == 20


def test_an_unreachable_gateway_is_one_clear_line() -> None:
    result = run_poll(f"http://127.0.0.1:{free_port()}", "--count=5")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        line for line in result.stderr.strip().splitlines() if "cannot reach the gateway" in line
    ]
    assert "ConnectError" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "-1"], "--rate"),
        (["--count", "3", "--duration", "5s"], "not allowed with argument"),
        (["--mix", "root=1,fly=1"], "unknown operation 'fly'"),
        (["--gateway", "ftp://x"], "--gateway"),
        (["--max-error-rate", "2"], "--max-error-rate"),
        (["--duration", "soon"], "--duration"),
        (["--concurrency", "0"], "--concurrency"),
    ],
)
def test_bad_flags_give_one_line_and_status_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["poll", *args])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_a_bad_environment_default_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POLL_RATE", "fast")
    with pytest.raises(SystemExit) as exit_info:
        main(["poll", "--count", "1"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "client: invalid setting POLL_RATE='fast': expected a number from 0.0 to 10000.0"
    )


def _wait_for_a_newer_mtime(path: Path, than: float, process: subprocess.Popen[str]) -> float:
    """The heartbeat file's mtime once it is newer than ``than`` (the loop beat again)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if path.exists() and path.stat().st_mtime_ns > than:
            return path.stat().st_mtime_ns
        time.sleep(0.05)
    raise AssertionError(f"{path} was not touched again (mtime stayed {than})")


def test_the_heartbeat_beats_while_waiting_and_while_polling(tmp_path: Path) -> None:
    """What the pod's liveness probe reads: the file keeps getting newer while the loop runs."""
    heartbeat = tmp_path / "heartbeat"
    server = ContractServer()  # nothing listens yet: the client waits for it
    with started_client(
        *("poll", "--gateway", server.url, "--rate=5", "--wait=60s"),
        env={"POLL_HEARTBEAT": str(heartbeat)},  # the container's form
    ) as process:
        waiting = _wait_for_a_newer_mtime(heartbeat, -1, process)
        _wait_for_a_newer_mtime(heartbeat, waiting, process)  # still waiting, still beating
        with server:
            assert _wait_until_served(server, 3) >= 3, "the client sent nothing"
            polling = _wait_for_a_newer_mtime(heartbeat, heartbeat.stat().st_mtime_ns, process)
            process.send_signal(signal.SIGINT)
            _stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert heartbeat.stat().st_mtime_ns >= polling


def test_an_unwritable_heartbeat_file_is_one_line_and_status_2(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "heartbeat"
    result = run_poll(f"http://127.0.0.1:{free_port()}", "--heartbeat", str(missing))
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "heartbeat file" in lines[0] and str(missing) in lines[0], lines
    assert "Traceback" not in result.stderr
