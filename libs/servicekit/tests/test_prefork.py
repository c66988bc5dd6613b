"""servicekit.prefork: the warm parent's protocol, with real processes.

The service under test is a small module written to a temporary directory (so
it is project code: outside the interpreter's library directories) and run as
``python -m servicekit.prefork prefork_probe:main``. It prints one line when it
runs (its pid, its VERSION, whether msgspec, a third-party module it imports,
was already imported when its own code was, and whether ``colorsys``, which
only its main() imports, at run time, was), then waits for SIGTERM;
SIGUSR1 makes it exit with status 3.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

DEADLINE_S = 60.0
PROBE = """
import importlib
import os
import signal
import sys

WARM = "msgspec" in sys.modules
import msgspec  # noqa: E402,F401

VERSION = "one"


def main() -> int:
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(signal.SIGTERM))
    signal.signal(signal.SIGUSR1, lambda *_: sys.exit(3))
    if os.environ.get("PROBE_IGNORE_TERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Imported at run time only (no import statement names it, as third-party packages
    # import their parts on first use): warm when the last child imported it.
    lazy = "colorsys" in sys.modules
    importlib.import_module("colorsys")

    print(f"child {os.getpid()} runs {VERSION} warm={WARM} lazy={lazy}", flush=True)
    while not stopping:
        signal.pause()
    print(f"child {os.getpid()} stops", flush=True)
    return 0
"""


class Parent:
    """``python -m servicekit.prefork prefork_probe:main`` with a status pipe."""

    def __init__(self, directory: Path, **env: str) -> None:
        self.log = directory / "output.log"
        read_fd, write_fd = os.pipe()
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "servicekit.prefork", "prefork_probe:main"],
                env={
                    **os.environ,
                    "PYTHONPATH": os.pathsep.join([str(directory), *sys.path]),
                    "PREFORK_STATUS_FD": str(write_fd),
                    **env,
                },
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                start_new_session=True,
            )
        os.close(write_fd)
        self.status = os.fdopen(read_fd, "r")

    def event(self) -> list[str]:
        """The next status line, split (blocks until the parent writes it)."""
        line = self.status.readline()
        assert line, f"the status pipe closed:\n{self.output()}"
        return line.split()

    def forked(self) -> int:
        word, pid = self.event()
        assert word == "forked"
        return int(pid)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_line(self, text: str) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while text not in self.output():
            assert time.monotonic() < deadline, f"no {text!r}:\n{self.output()}"
            time.sleep(0.02)

    def wait(self) -> int:
        return self.process.wait(timeout=DEADLINE_S)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.status.close()


def alive(pid: int) -> bool:
    """Running (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_gone(pid: int) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while alive(pid):
        assert time.monotonic() < deadline, f"pid {pid} still running"
        time.sleep(0.02)


@pytest.fixture
def probe_dir(tmp_path: Path) -> Path:
    (tmp_path / "prefork_probe.py").write_text(PROBE)
    return tmp_path


@pytest.fixture
def parent(probe_dir: Path) -> Iterator[Parent]:
    started = Parent(probe_dir)
    try:
        yield started
    finally:
        started.close()


def save(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.swp")
    temporary.write_text(text)
    os.replace(temporary, path)


def test_sighup_forks_a_new_child_that_runs_the_edited_code(
    parent: Parent, probe_dir: Path
) -> None:
    first = parent.forked()
    parent.wait_line(f"child {first} runs one warm=True lazy=False")
    save(probe_dir / "prefork_probe.py", PROBE.replace('VERSION = "one"', 'VERSION = "two"'))
    parent.process.send_signal(signal.SIGHUP)
    assert parent.event() == ["stopped", str(first), "0"]
    second = parent.forked()
    assert second != first and not alive(first)
    # The project module is imported afresh; its third-party import was already there, and
    # so was the module the first child imported on its own (the parent learnt it).
    parent.wait_line(f"child {second} runs two warm=True lazy=True")
    assert f"child {first} stops" in parent.output()
    assert parent.process.poll() is None


def test_a_child_that_exits_ends_the_parent_with_its_status(parent: Parent) -> None:
    child = parent.forked()
    parent.wait_line(f"child {child} runs")
    os.kill(child, signal.SIGUSR1)
    assert parent.event() == ["stopped", str(child), "3"]
    assert parent.wait() == 3


def test_a_killed_child_ends_the_parent_with_the_same_signal(parent: Parent) -> None:
    child = parent.forked()
    parent.wait_line(f"child {child} runs")
    os.kill(child, signal.SIGKILL)
    assert parent.event() == ["stopped", str(child), str(-signal.SIGKILL)]
    assert parent.wait() == -signal.SIGKILL


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_sigint_stops_the_child_then_the_parent(
    parent: Parent, signum: signal.Signals
) -> None:
    child = parent.forked()
    parent.wait_line(f"child {child} runs")
    parent.process.send_signal(signum)
    word, pid, returncode = parent.event()
    assert (word, pid) == ("stopped", str(child))
    # SIGTERM: the probe stops cleanly; SIGINT: Python's KeyboardInterrupt ends it (status 1).
    assert parent.wait() == int(returncode) == (0 if signum == signal.SIGTERM else 1)
    assert not alive(child)


def test_a_child_never_outlives_its_parent(parent: Parent) -> None:
    child = parent.forked()
    parent.wait_line(f"child {child} runs")
    parent.process.kill()  # SIGKILL: the parent cannot pass anything on
    parent.wait()
    wait_gone(child)  # its parent-death signal (SIGTERM) stopped it
    assert f"child {child} stops" in parent.output()


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(probe_dir: Path) -> None:
    stubborn = Parent(probe_dir, PROBE_IGNORE_TERM="1", PREFORK_GRACE_S="0.5")
    try:
        first = stubborn.forked()
        stubborn.wait_line(f"child {first} runs")
        stubborn.process.send_signal(signal.SIGHUP)
        assert stubborn.event() == ["stopped", str(first), str(-signal.SIGKILL)]
        second = stubborn.forked()
        stubborn.wait_line(f"child {second} runs")
        assert f"child {first} did not stop in 0.5 s: SIGKILL" in stubborn.output()
    finally:
        stubborn.close()


def test_saves_during_a_reload_make_one_new_child(parent: Parent) -> None:
    first = parent.forked()
    parent.wait_line(f"child {first} runs")
    for _ in range(3):
        parent.process.send_signal(signal.SIGHUP)
    assert parent.event()[:2] == ["stopped", str(first)]
    second = parent.forked()
    parent.wait_line(f"child {second} runs")
    # Any SIGHUP that arrived after the new fork is one more reload, never a burst of them.
    parent.process.send_signal(signal.SIGTERM)
    assert parent.wait() == 0
    events = [line.split() for line in parent.status.read().splitlines()]
    assert len([e for e in events if e[0] == "forked"]) <= 1, events
    assert events[-1][0] == "stopped" and events[-1][2] == "0", events


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "usage"),
        (["no-such-script"], "no console script named 'no-such-script'"),
    ],
)
def test_a_bad_command_line_is_one_line_and_status_2(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "servicekit.prefork", *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )
    assert result.returncode == 2
    assert message in result.stderr.lower() and "Traceback" not in result.stderr


def test_arguments_go_to_the_service_in_the_parent_s_process() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "servicekit.prefork", "tts-backend", "--help"],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: tts-backend")
