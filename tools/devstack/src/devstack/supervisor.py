"""Run the stack's processes, wait until they are ready, restart the ones that die, stop them all.

Why asyncio subprocesses rather than honcho: honcho (a foreman port) starts a
thread per process to copy its output, and stops every process as soon as one
exits; it has no readiness checks and no restarts. The stack needs readiness
probes (HTTP and gRPC health) before it says "ready", a restart with backoff
when a service dies (a killed canary comes back, as its Deployment would bring
it back in a cluster), a process group per child so nothing is orphaned, and
one place that reacts to Ctrl-C. asyncio's subprocess support does all of that
in one event loop with no threads and no extra dependency.

Restart policy: a service that exits while the stack runs is reported with its
exit status and restarted after a backoff (0.5 s, doubling up to 8 s; back to
0.5 s once it has stayed up a minute). A service that exits 5 times within a
minute stops the whole stack (exit status 1). During start-up nothing is
restarted: a service that exits or is not ready in time stops everything.
The polling client (``--with-client``) is never restarted.

Live reload (:mod:`devstack.reload`): a service whose source changed is
stopped and started again on the same port with the same data. Services run
by a warm parent (:mod:`servicekit.prefork`: books, tts-backend, the fronts)
are reloaded with SIGHUP: the parent, which has their dependencies imported,
stops the old child and forks a new one; the stack waits for its ``forked``
line, then probes readiness as after a start. A change to a ``.proto``, a
``*_pb2`` module or the metadata, or a parent that is not running, restarts
the service cold. If it does not
come back (it exits, or is not ready in time), it is reported with its last
log lines and waits, stopped, for the next save; the other services keep
running. A service that has been restarted for an edit and then exits 5 times
within a minute also waits for the next save instead of stopping the stack.

Readiness decides, as in Kubernetes: a service that the stack stops (for an
edit, or because it exited) leaves the local gateway's pick *before* it is
stopped, without counting as a failure there, and is back in the pick the
moment its probe passes again (a fresh endpoint: its outlier state is reset).
While it runs, each service is probed every ``PROBE_PERIOD_S`` as its pod's
readinessProbe is (``periodSeconds: 5``, ``failureThreshold: 2``); one that
fails twice in a row leaves the pick until a probe passes. Each change is one
line. The gateway learns it through its admin socket
(:mod:`devstack.gatewaylink`), and gets the whole state whenever it starts.

The stack's state (each service's state, pid, port, restarts, last reload and
its cause, readiness) is kept in a JSON file that ``stack status`` reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TextIO

from devstack.gatewaylink import GatewayLink, GatewayLinkError
from devstack.logview import Prefixer, render
from devstack.probes import is_ready
from devstack.services import GATEWAY, ServiceSpec
from devstack.stackstate import StackState

RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)
STABLE_AFTER_S = 60.0
MAX_EXITS = 5
EXIT_WINDOW_S = 60.0
STOP_GRACE_S = 10.0
PROBE_INTERVAL_S = 0.1  # while waiting for a service to be ready
PROBE_PERIOD_S = 5.0  # once it is: its pod's readinessProbe periodSeconds
UNREADY_PROBE_PERIOD_S = 1.0  # once it failed: how soon a passing probe is seen
FAILURE_THRESHOLD = 2  # its pod's readinessProbe failureThreshold
LINE_LIMIT = 1024 * 1024
RECENT_LINES = 15  # shown when a service fails to come back after an edit
# A warm reload waits this long for the new child (the warm parent's grace is 8 s).
WARM_RELOAD_TIMEOUT_S = STOP_GRACE_S + 5.0
# Edits a warm parent cannot take in (its imports are stale): restart it cold.
COLD_EDITS = (".proto", "_pb2.py", "_pb2_grpc.py", "pyproject.toml", "uv.lock")
_PR_SET_PDEATHSIG = 1


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exit status {returncode}"


def _die_with_parent(signum: int = signal.SIGTERM) -> Callable[[], None]:
    """In the child: get ``signum`` if the stack itself dies (even by SIGKILL)."""

    def set_death_signal() -> None:
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signum)

    return set_death_signal


class Output:
    """Writes prefixed lines for the children and the stack itself."""

    def __init__(self, names: list[str], stream: TextIO = sys.stdout) -> None:
        self.stream = stream
        self.prefixer = Prefixer(["stack", *names], colour=stream.isatty())

    def line(self, name: str, text: str) -> None:
        self.stream.write(self.prefixer.prefix(name) + text + "\n")
        self.stream.flush()

    def stack(self, text: str) -> None:
        self.line("stack", text)


class Child:
    def __init__(self, spec: ServiceSpec, output: Output, cwd: Path) -> None:
        self.spec = spec
        self.output = output
        self.cwd = cwd
        self.process: asyncio.subprocess.Process | None = None
        self.reader: asyncio.Task[None] | None = None
        self.exit_times: deque[float] = deque(maxlen=MAX_EXITS)
        self.started_at = 0.0
        self.restarts = 0
        self.recent: deque[str] = deque(maxlen=RECENT_LINES)
        self.edit = asyncio.Event()  # its source changed: restart it
        self.edit_cause = ""  # the file(s) that changed
        self.edited = False  # restarted for an edit at least once
        self.broken = False  # did not come back after an edit: waits for the next one
        self.ready = False  # in the gateway's pick (its probe passed, not being stopped)
        self.state = "starting"  # what `stack status` shows
        self.restart_count = 0  # every restart since the stack started
        self.last_reload: dict[str, object] | None = None  # when, and why
        self.edit_files: set[str] = set()  # what changed since the last restart for an edit
        self.forked = asyncio.Event()  # warm: the parent reported a new child
        self.forked_pid = ""
        self.status_reader: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    async def start(self) -> None:
        status_fd = await self._open_status() if self.spec.warm else None
        extra = {} if status_fd is None else {"PREFORK_STATUS_FD": str(status_fd)}
        self.process = await asyncio.create_subprocess_exec(
            *self.spec.command,
            env={**os.environ, **self.spec.env, **extra},
            pass_fds=() if status_fd is None else (status_fd,),
            cwd=self.cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole
            preexec_fn=_die_with_parent(self.spec.death_signal),
            limit=LINE_LIMIT,
        )
        if status_fd is not None:
            os.close(status_fd)
        self.started_at = time.monotonic()
        self.reader = asyncio.create_task(self._copy_output(self.process))
        self.output.stack(f"started {self.name} (pid {self.process.pid})")

    async def _copy_output(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while True:
            try:
                raw = await process.stdout.readline()
            except ValueError:  # a line longer than LINE_LIMIT
                raw = await process.stdout.read(LINE_LIMIT)
            if not raw:
                return
            line = render(raw.decode(errors="replace"))
            self.recent.append(line)
            self.output.line(self.name, line)

    async def _open_status(self) -> int:
        """The pipe the warm parent writes its events to; returns the end it writes to."""
        if self.status_reader is not None:
            self.status_reader.cancel()
        read_fd, write_fd = os.pipe()
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", 0)
        )
        self.status_reader = asyncio.create_task(self._read_status(reader, transport))
        return write_fd

    async def _read_status(self, reader: asyncio.StreamReader, transport: Any) -> None:
        try:
            while line := await reader.readline():
                word, *values = line.decode(errors="replace").split()
                if word == "forked" and len(values) == 1:
                    self.forked_pid = values[0]
                    self.forked.set()
                elif word == "stopped" and len(values) == 2 and values[1].lstrip("-").isdigit():
                    status = describe_exit(int(values[1]))
                    self.output.stack(f"stopped {self.name}'s child pid {values[0]} ({status})")
        finally:
            transport.close()

    async def reload_warm(self) -> bool:
        """SIGHUP the warm parent (servicekit.prefork) and wait until it has forked a new child.

        False when that is not possible (not warm, not running, no new child in
        time): the caller restarts the service cold.
        """
        if not self.spec.warm or not self.running() or self.status_reader is None:
            return False
        assert self.process is not None
        self.forked.clear()
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGHUP)
        try:
            await asyncio.wait_for(self.forked.wait(), WARM_RELOAD_TIMEOUT_S)
        except TimeoutError:
            return False
        self.output.stack(
            f"started {self.name} (pid {self.forked_pid}) from its warm parent "
            f"(pid {self.process.pid})"
        )
        return True

    def status(self) -> dict[str, Any]:
        """What ``stack status`` shows of this service (written by :mod:`devstack.stackstate`)."""
        process = self.process
        return {
            "state": self.state,
            "pid": process.pid if process is not None and self.running() else None,
            "port": self.spec.port,
            "restarts": self.restart_count,
            "last_reload": self.last_reload,
            "ready": self.ready if self.spec.probe is not None else None,
            "gateway_key": self.spec.gateway_key,
        }

    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def wait(self) -> int:
        assert self.process is not None
        returncode = await self.process.wait()
        if self.reader is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.reader), 1.0)
        return returncode

    def signal_group(self, signum: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    async def stop(self) -> None:
        """SIGTERM the service (as Kubernetes does), SIGKILL its group after the grace period.

        Only the service's own process gets SIGTERM so it can shut its workers
        down in order; whatever is left in its process group afterwards is killed.
        """
        if self.process is None:
            return
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(self.spec.stop_signal)
            try:
                await asyncio.wait_for(self.process.wait(), STOP_GRACE_S)
            except TimeoutError:
                self.output.stack(f"{self.name} did not stop in {STOP_GRACE_S:.0f} s: SIGKILL")
            status = describe_exit(await self.wait_killed())
            self.output.stack(f"stopped {self.name} ({status})")
        # Anything it started in its group (worker processes) goes too.
        self.signal_group(signal.SIGKILL)
        if self.reader is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.reader, 1.0)

    async def wait_killed(self) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.signal_group(signal.SIGKILL)
        return await self.process.wait()

    def next_backoff(self) -> float | None:
        """Seconds before the restart, or None when it exits too often to go on."""
        now = time.monotonic()
        if now - self.started_at >= STABLE_AFTER_S:
            self.restarts = 0
        self.exit_times.append(now)
        if len(self.exit_times) == MAX_EXITS and now - self.exit_times[0] < EXIT_WINDOW_S:
            return None
        delay = RESTART_BACKOFF_S[min(self.restarts, len(RESTART_BACKOFF_S) - 1)]
        self.restarts += 1
        return delay


class Stack:
    """Starts every child, waits for all to be ready, supervises, and stops them all."""

    def __init__(
        self,
        specs: list[ServiceSpec],
        *,
        cwd: Path,
        ready_timeout_s: float,
        on_ready: Callable[[float], None],
        output: Output | None = None,
        reloader: Callable[[Stack], Coroutine[Any, Any, None]] | None = None,
        gateway: GatewayLink | None = None,
        state: StackState | None = None,
        prepare: Callable[[], Coroutine[Any, Any, str | None]] | None = None,
    ) -> None:
        self.output = output or Output([s.name for s in specs])
        self.children = [Child(spec, self.output, cwd) for spec in specs]
        self.ready_timeout_s = ready_timeout_s
        self.on_ready = on_ready
        self.stopping = asyncio.Event()
        self.exit_code = 0
        self.reloader = reloader
        self.gateway = gateway
        self.state = state
        self.prepare = prepare  # after the first services are ready (create the database)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        # SIGHUP: the terminal closed; stop as for Ctrl-C, nothing left running.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, self._on_signal, signum)
        # Watching from the start: an edit made while the stack starts is not missed.
        reloading = asyncio.create_task(self.reloader(self)) if self.reloader else None
        try:
            started = time.monotonic()
            if (
                await self._start_services()
                and await self._all_ready()
                and await self._start_clients()
            ):
                self.on_ready(time.monotonic() - started)
                await self._supervise()
        finally:
            if reloading is not None:
                await self._end_reloading(reloading)
            await self._stop_all()
            if self.state is not None:
                self.state.remove()
        return self.exit_code

    async def _end_reloading(self, reloading: asyncio.Task[None]) -> None:
        self.stopping.set()  # its file watchers stop within their step
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reloading), 2.0)
        reloading.cancel()  # a last resort
        await asyncio.gather(reloading, return_exceptions=True)

    def _on_signal(self, signum: int) -> None:
        if not self.stopping.is_set():
            self.output.stack(f"{signal.Signals(signum).name}: stopping every service")
        self.stopping.set()

    def _fail(self, message: str) -> None:
        self.output.stack(message)
        self.exit_code = 1
        self.stopping.set()

    async def _start_services(self) -> bool:
        """Start every service (all but the clients); the database first, until ready."""
        first = [c for c in self.children if c.spec.start_first]
        if first:
            if not await self._start(first) or not await self._all_ready(first):
                return False
            if self.prepare is not None:
                problem = await self.prepare()
                if problem:
                    self._fail(problem)
                    return False
        return await self._start(
            [c for c in self.children if not c.spec.start_when_ready and not c.spec.start_first]
        )

    async def _start_clients(self) -> bool:
        """Start the clients (once every service is ready)."""
        return await self._start([c for c in self.children if c.spec.start_when_ready])

    async def _start(self, children: list[Child]) -> bool:
        for child in children:
            try:
                await child.start()
            except OSError as error:
                self._fail(f"cannot start {child.name}: {error}")
                return False
            child.state = "starting" if child.spec.probe is not None else "running"
            self._save_state()
        return True

    def _save_state(self) -> None:
        if self.state is not None:
            self.state.save({child.name: child.status() for child in self.children})

    async def _set_ready(self, child: Child, ready: bool, reason: str) -> None:
        """In or out of the gateway's pick (and of `stack status`'s "ready" column).

        Out of the pick *before* the stack stops it: requests in flight finish,
        new ones go elsewhere, and nothing counts as a failure.
        """
        changed = child.ready != ready
        child.ready = ready
        if ready:
            child.state = "running"
        self._save_state()
        key = child.spec.gateway_key
        if key is not None and self.gateway is not None and (changed or ready):
            # The gateway down: it gets the whole state when it is back.
            with contextlib.suppress(GatewayLinkError):
                await self.gateway.set_ready({key: ready}, reason)
        if ready and child.name == GATEWAY:
            await self._tell_gateway_everything()

    async def _tell_gateway_everything(self) -> None:
        """A (re)started gateway starts with every destination ready: correct it."""
        if self.gateway is None:
            return
        states = {c.spec.gateway_key: c.ready for c in self.children if c.spec.gateway_key}
        try:
            await self.gateway.set_ready(
                {k: v for k, v in states.items() if k is not None}, "stack runner's state"
            )
        except GatewayLinkError as error:
            self.output.stack(f"cannot tell the gateway which services are ready: {error}")

    async def _all_ready(self, children: list[Child] | None = None) -> bool:
        services = [
            c
            for c in (self.children if children is None else children)
            if not c.spec.start_when_ready and not c.ready
        ]
        if not services:
            return True

        async def wait_ready(child: Child) -> str | None:
            problem = await self._wait_ready(child, self.ready_timeout_s)
            if problem is None:
                await self._set_ready(child, True, "started")
            return problem

        waits = [asyncio.create_task(wait_ready(c)) for c in services]
        stop = asyncio.create_task(self.stopping.wait())
        pending: set[asyncio.Task[object]] = {*waits, stop}
        try:
            while True:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if stop in done:
                    return False
                for task in done:
                    problem = task.result()
                    if problem:
                        self._fail(str(problem))
                        return False
                if pending == {stop}:
                    return True
        finally:
            for task in pending:
                task.cancel()

    async def _wait_ready(self, child: Child, timeout_s: float) -> str | None:
        """None once ready; otherwise what went wrong, naming the service."""
        probe = child.spec.probe
        deadline = time.monotonic() + timeout_s
        while True:
            if not child.running():
                assert child.process is not None
                status = describe_exit(await child.wait())
                return f"{child.name} exited ({status}) before it was ready; stopping the stack"
            if probe is None or await is_ready(probe):
                return None
            if time.monotonic() > deadline:
                return (
                    f"{child.name} not ready after {timeout_s:.0f} s "
                    f"({probe.kind} {probe.target}); stopping the stack"
                )
            await asyncio.sleep(PROBE_INTERVAL_S)

    async def _supervise(self) -> None:
        watchers = [asyncio.create_task(self._watch(child)) for child in self.children]
        watchers += [
            asyncio.create_task(self._probe_periodically(child))
            for child in self.children
            if child.spec.probe is not None
        ]
        try:
            await self.stopping.wait()
        finally:
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)

    async def _probe_periodically(self, child: Child) -> None:
        """Its pod's readinessProbe: out of the pick after 2 failures, back on a pass."""
        failures = 0
        probe = child.spec.probe
        assert probe is not None
        while not self.stopping.is_set():
            period = PROBE_PERIOD_S if child.ready else UNREADY_PROBE_PERIOD_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), period)
            if self.stopping.is_set():
                return
            if child.state not in ("running", "not ready") or not child.running():
                failures = 0  # being restarted: the restart decides
                continue
            ok = await is_ready(probe)
            if child.state not in ("running", "not ready") or not child.running():
                continue  # it was stopped meanwhile
            if ok:
                failures = 0
                if not child.ready:
                    self.output.stack(f"{child.name} passes its readiness probe again")
                    await self._set_ready(child, True, "readiness probe passed")
                continue
            failures += 1
            if child.ready and failures >= FAILURE_THRESHOLD:
                child.state = "not ready"
                self.output.stack(
                    f"{child.name} failed its readiness probe {failures} times in a row "
                    f"({probe.kind} {probe.target}): out of the gateway's pick until it passes"
                )
                await self._set_ready(child, False, "readiness probe failed")

    def restart_for_edit(self, services: Mapping[str, object]) -> None:
        """Restart these services (by name) because their source changed."""
        for child in self.children:
            if child.name in services:
                files = services[child.name]
                child.edit_cause = (
                    ", ".join(map(str, files)) if isinstance(files, list) else str(files)
                )
                if isinstance(files, list | tuple | set):
                    child.edit_files.update(str(f) for f in files)
                child.edit.set()

    def restart_if_broken(self, name: str, cause: str) -> bool:
        """Start a service that waits for a save (a fixed routing file brings the gateway back)."""
        for child in self.children:
            if child.name == name and (child.broken or not child.running()):
                child.edit_cause = cause
                child.edit.set()
                return True
        return False

    async def _next_event(self, child: Child) -> bool:
        """Wait until the child exits (False) or its source changes (True)."""
        waits: set[asyncio.Task[object]] = {asyncio.create_task(child.edit.wait())}
        if not child.broken:  # (a broken child is stopped already and waits for an edit)
            waits.add(asyncio.create_task(child.wait()))  # at once if it exited meanwhile
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
        return child.edit.is_set()

    async def _watch(self, child: Child) -> None:
        while True:
            edited = await self._next_event(child)
            if self.stopping.is_set():
                return
            if edited:
                await self._restart_for_edit(child)
                continue
            assert child.process is not None and child.process.returncode is not None
            status = describe_exit(child.process.returncode)
            child.state = "exited"
            await self._set_ready(child, False, f"exited ({status})")
            if not child.spec.restart:
                self.output.stack(f"{child.name} exited ({status}); not restarted")
                return
            delay = child.next_backoff()
            if delay is None:
                if child.edited:  # an edit broke it: wait for the next one
                    child.broken = True
                    child.state = "broken"
                    self._save_state()
                    self._report_broken(
                        child, f"exited ({status}), {MAX_EXITS} times within a minute"
                    )
                    continue
                self._fail(
                    f"{child.name} exited ({status}), {MAX_EXITS} times within "
                    f"{EXIT_WINDOW_S:.0f} s; stopping the stack"
                )
                return
            self.output.stack(f"{child.name} exited ({status}); restarting in {delay:g} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping_or_edit(child), delay)
            if self.stopping.is_set():
                return
            if child.edit.is_set():
                continue  # the edit restarts it, right away
            try:
                await child.start()
            except OSError as error:
                self._fail(f"cannot restart {child.name}: {error}")
                return
            child.restart_count += 1
            child.last_reload = {"at": time.time(), "cause": f"exited ({status})"}
            child.state = "starting"
            self._save_state()
            problem = await self._wait_ready(child, self.ready_timeout_s)
            if problem is None:
                self.output.stack(f"{child.name} is ready again")
                await self._set_ready(child, True, "ready after a restart")
            elif child.running():
                child.state = "not ready"
                self._save_state()
                self.output.stack(f"{child.name} is still not ready")

    async def _stopping_or_edit(self, child: Child) -> None:
        waits = {asyncio.create_task(self.stopping.wait()), asyncio.create_task(child.edit.wait())}
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()

    async def _restart_for_edit(self, child: Child) -> None:
        """Stop the child and start it again (same port, same data); wait until it is ready.

        A further edit while it starts restarts it again at once; if it does not
        come back it is reported with its last lines and left stopped until the next edit.
        """
        child.edit.clear()
        child.edited = True
        cause = child.edit_cause or "an edit"
        child.state = "restarting"
        await self._set_ready(child, False, f"restarting: {cause} changed")
        files, child.edit_files = child.edit_files, set()
        cold = any(f.endswith(COLD_EDITS) for f in files)
        child.restart_count += 1
        child.last_reload = {"at": time.time(), "cause": f"{cause} changed"}
        if not cold and await child.reload_warm():
            child.recent.clear()
        else:
            await child.stop()
            if self.stopping.is_set():
                return
            child.recent.clear()
            try:
                await child.start()
            except OSError as error:
                child.broken = True
                child.state = "broken"
                self._save_state()
                self._report_broken(child, f"cannot start: {error}")
                return
        self._save_state()
        ready = asyncio.create_task(self._wait_ready(child, self.ready_timeout_s))
        interrupt = asyncio.create_task(self._stopping_or_edit(child))
        await asyncio.wait({ready, interrupt}, return_when=asyncio.FIRST_COMPLETED)
        interrupt.cancel()
        if not ready.done():
            ready.cancel()
            return  # stopping, or edited again: the loop restarts it
        if ready.result() is None:
            child.broken = False
            child.exit_times.clear()
            child.restarts = 0
            self.output.stack(f"{child.name} is ready again")
            await self._set_ready(child, True, "ready after the edit")
            return
        child.broken = True
        child.state = "broken"
        self._save_state()
        if child.running():
            await child.stop()
            self._report_broken(child, f"not ready {self.ready_timeout_s:.0f} s after the edit")
        else:
            assert child.process is not None and child.process.returncode is not None
            status = describe_exit(child.process.returncode)
            self._report_broken(child, f"exited ({status}) after the edit")

    def _report_broken(self, child: Child, what: str) -> None:
        lines = list(child.recent)
        which = (
            "the next save of its source or of a routing file"
            if child.name == GATEWAY
            else "the next save"
        )
        self.output.stack(
            f"{child.name} {what}; the other services keep running and it starts again "
            f"on {which}. Its last {len(lines)} lines:"
        )
        for line in lines:
            self.output.stack(f"  {child.name} | {line}")

    async def _stop_all(self) -> None:
        """Every service at once, then the APM agent (their final traces reach it) and the
        database (books' pool closes first)."""
        first = [child for child in self.children if not child.spec.stop_last]
        for child in self.children:
            child.state = "stopping"
        await asyncio.gather(*(child.stop() for child in first))
        await asyncio.gather(*(child.stop() for child in self.children if child.spec.stop_last))
