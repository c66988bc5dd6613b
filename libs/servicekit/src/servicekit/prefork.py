"""A warm parent that forks a fresh child per reload (gunicorn ``--preload``'s pre-fork model).

    python -m servicekit.prefork SCRIPT [ARG ...]

``SCRIPT`` is a console script of the environment (``tts-v1``, or a path to it
or to a symlink to it, as the images' ``service-entrypoint``), or an entry
point written ``package.module:function``. With arguments
(``--help``) the service runs in this process, as the script would. Without,
this process becomes the service's *warm parent*:

1. it imports what the service imports (below), then forgets the project's own
   modules, so each child imports the project code fresh from disk while the
   third-party modules (Litestar, granian, gRPC, ddtrace, protobuf, ...) stay
   imported;
2. it forks a child that runs the script's entry point, and supervises it.

Protocol (the stack's supervisor and the images' live_update use it):

- ``SIGHUP``: reload. SIGTERM the child, wait for it (SIGKILL after
  ``PREFORK_GRACE_S``, default 8 s), fork a new child. Saves that arrive while
  the old child stops are one reload.
- ``SIGTERM``/``SIGINT``: pass the signal to the child, wait for it (SIGKILL
  after the grace period), exit with the child's status.
- A child that exits on its own (a crash, a bad edit): the parent exits with
  the same status (killed by a signal: the same signal), so whoever supervises
  the parent (the stack, Kubernetes) sees the service exit as it would without
  the parent.
- ``PREFORK_STATUS_FD=N``: one line per event on file descriptor N:
  ``stopped <pid> <returncode>`` once a child has exited (a negative code is
  the signal that killed it) and ``forked <pid>`` once a new child runs.
- Each child gets ``PR_SET_PDEATHSIG`` (SIGTERM): it never outlives the parent.
  The parent reaps every process reparented to it, so it can be PID 1.

What is warmed, and why this way. The parent imports the entry point's module
and, following import statements in the source (function-level ones too, where
services import lazily), every project module they reach and the third-party
modules those name. It calls no project function, so nothing of the project
runs in the parent: no settings are read, no telemetry or logging is set up, no
thread, event loop, gRPC channel or socket exists at the fork. Project modules
are those whose files lie outside the interpreter's library directories
(``sysconfig``): the workspace members' ``src/`` (editable installs or
``PYTHONPATH``), ``/app/<member>/src`` in the images. They are removed from
``sys.modules`` after warming; import-time side effects of project code
(logger objects, warning filters) are idempotent. Generated ``*_pb2`` modules
import again in each child: the descriptor pool accepts the identical file
again; a changed ``.proto`` needs a cold start (the stack restarts the parent).

ddtrace reads its configuration from the environment when it is first imported,
so the parent imports it only once the environment is what a cold start would
give it (:func:`servicekit.telemetry.datadog.apply_environment_defaults`), which
needs ``DD_SERVICE`` and ``DD_VERSION`` set (the stack and the pods set both)
and Datadog mode; otherwise every ``ddtrace`` import is left to the child.
Never warmed: modules that start threads when imported (the profiler,
``ddtrace.auto``). The parent reports threads it finds running before a fork.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import ctypes
import gc
import importlib
import importlib.metadata
import os
import signal
import sys
import sysconfig
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import NoReturn

PROGRAM = "servicekit.prefork"
STATUS_FD_ENV = "PREFORK_STATUS_FD"
GRACE_ENV = "PREFORK_GRACE_S"
DEFAULT_GRACE_S = 8.0
HANDLED = {signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
# Imported by a child only: they start threads or services when imported.
NEVER_WARMED = ("ddtrace.auto", "ddtrace.bootstrap", "ddtrace.profiling", "__main__")
_PR_SET_PDEATHSIG = 1


class UsageError(Exception):
    """A bad command line: one line on stderr, exit status 2."""


def resolve_script(script: str) -> importlib.metadata.EntryPoint:
    """The console-script entry point named ``script`` (a name, a path or a symlink to one).

    ``package.module:function`` names the entry point itself.
    """
    if ":" in script and os.sep not in script:
        return importlib.metadata.EntryPoint(script, script, "console_scripts")
    name = Path(os.path.realpath(script)).name if os.sep in script else script
    found = importlib.metadata.entry_points(group="console_scripts", name=name)
    for entry in found:
        return entry
    raise UsageError(f"{PROGRAM}: no console script named {name!r} in this environment")


# ---- warming -------------------------------------------------------------------------------


def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    return tuple({os.path.realpath(paths[name]) + os.sep for name in names if name in paths})


def is_project_module(module: ModuleType, library_dirs: tuple[str, ...]) -> bool:
    """Whether the module's code lies outside the interpreter's library directories."""
    files = [getattr(module, "__file__", None), *list(getattr(module, "__path__", []) or [])]
    located = [os.path.realpath(f) for f in files if isinstance(f, str)]
    return bool(located) and not any(f.startswith(library_dirs) for f in located)


def imported_names(source: str, package: str) -> Iterator[str]:
    """Every module an import statement in ``source`` may name (absolute, relative resolved)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                if node.level > len(parts):
                    continue
                prefix = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{prefix}.{base}" if base else prefix
            if not base or base == "__future__":
                continue
            yield base
            for alias in node.names:  # `from package import module`
                if alias.name != "*":
                    yield f"{base}.{alias.name}"


def _prepare_ddtrace() -> bool:
    """Set the environment ddtrace reads at import as a cold start would; False: leave it."""
    if not (os.environ.get("DD_SERVICE", "").strip() and os.environ.get("DD_VERSION", "").strip()):
        return False
    from servicekit.settings import SettingsError
    from servicekit.telemetry_settings import TraceMode, load_telemetry_settings

    try:
        settings = load_telemetry_settings(os.environ["DD_SERVICE"], os.environ["DD_VERSION"])
    except SettingsError:
        return False  # the child says what is wrong
    if settings.mode is not TraceMode.DATADOG or settings.profiling:
        return False
    from servicekit.telemetry.datadog import apply_environment_defaults

    apply_environment_defaults(settings)
    return True


def _is_never_warmed(name: str, never: tuple[str, ...]) -> bool:
    return any(name == n or name.startswith(n + ".") for n in never)


def warm(module_name: str) -> tuple[str, ...]:
    """Import ``module_name`` and what it imports, then forget the project's modules.

    Returns the modules (and packages) that must stay unimported in this process.
    """
    library_dirs = _library_dirs()
    never = NEVER_WARMED if _prepare_ddtrace() else (*NEVER_WARMED, "ddtrace")
    pending = deque([module_name])
    seen: set[str] = set()
    while pending:
        name = pending.popleft()
        if name in seen or _is_never_warmed(name, never):
            continue
        seen.add(name)
        try:
            module = importlib.import_module(name)
        except Exception:  # not a module (`from x import function`), or broken: the child says
            continue
        origin = getattr(module, "__file__", None)
        if not is_project_module(module, library_dirs) or not origin or not origin.endswith(".py"):
            continue
        try:
            source = Path(origin).read_text()
            package = module.__name__ if hasattr(module, "__path__") else module.__package__
            pending.extend(imported_names(source, package or ""))
        except (OSError, SyntaxError, ValueError):
            continue
    forget_project_modules(library_dirs)
    return never


def forget_project_modules(library_dirs: tuple[str, ...]) -> None:
    forgotten = [
        name
        for name, module in list(sys.modules.items())
        if name not in ("__main__", "__mp_main__")
        and module is not None
        and is_project_module(module, library_dirs)
    ]
    for name in forgotten:
        del sys.modules[name]
    importlib.invalidate_caches()
    gc.collect()
    gc.freeze()  # what the parent holds stays out of the children's collections (shared pages)


def third_party_modules(names: Iterable[str]) -> list[str]:
    """Those of ``names`` that are imported modules of this process and not the project's."""
    library_dirs = _library_dirs()
    modules = [(name, sys.modules.get(name)) for name in names]
    return sorted(
        name
        for name, module in modules
        if module is not None and not is_project_module(module, library_dirs)
    )


def warm_learned(path: Path, never: tuple[str, ...]) -> None:
    """Import what the last child imported (listed in ``path``) and this process has not.

    Third-party packages import parts of themselves lazily, on first use
    (Litestar's request handling, anyio's backend, ddtrace's integrations): a
    child that served once lists them at exit, so the next child finds them imported.
    """
    try:
        names = path.read_text().split()
        path.unlink()
    except OSError:
        return
    missing = [n for n in names if n not in sys.modules and not _is_never_warmed(n, never)]
    for name in missing:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    if missing:
        forget_project_modules(_library_dirs())  # in case one imported project code


# ---- the parent ----------------------------------------------------------------------------


def _die_with_parent(parent: int) -> None:
    """In the child: SIGTERM when the parent dies (even by SIGKILL)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before prctl
        os._exit(1)


def _returncode(status: int) -> int:
    """A wait status as subprocess reports it: the exit code, or minus the killing signal."""
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.waitstatus_to_exitcode(status)


class Parent:
    def __init__(
        self,
        run_child: Callable[[], int],
        *,
        status_fd: int | None,
        grace_s: float,
        saved_mask: set[int | signal.Signals],
        never: tuple[str, ...] = NEVER_WARMED,
    ) -> None:
        self.run_child = run_child
        self.never = never
        # Where a child lists the modules it imported, as it exits (see warm_learned).
        self.learned = Path(tempfile.gettempdir()) / f"servicekit-prefork-{os.getpid()}.modules"
        self.status_fd = status_fd
        self.grace_s = grace_s
        self.saved_mask = saved_mask
        self.child = 0
        self.child_status: int | None = None
        self.stop_signal: int | None = None  # SIGTERM/SIGINT received: stop after this child

    def status(self, line: str) -> None:
        if self.status_fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(self.status_fd, f"{line}\n".encode())

    def fork(self) -> None:
        warm_learned(self.learned, self.never)
        running = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
        if running:
            print(f"{PROGRAM}: forking with threads running: {', '.join(running)}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            self._child(parent)
        self.child, self.child_status = pid, None
        self.status(f"forked {pid}")

    def _child(self, parent: int) -> NoReturn:
        code = 1
        try:
            _die_with_parent(parent)
            if self.status_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self.status_fd)
            os.environ.pop(STATUS_FD_ENV, None)
            signal.pthread_sigmask(signal.SIG_SETMASK, self.saved_mask)
            importlib.invalidate_caches()  # the sources may have changed since the last child
            atexit.register(self._list_modules, set(sys.modules))
            code = self.run_child()
        finally:
            _exit_child(code)

    def _list_modules(self, inherited: set[str]) -> None:
        """In the child, at exit: what it imported, for the parent's next fork."""
        with contextlib.suppress(OSError):
            temporary = self.learned.with_name(f"{self.learned.name}.{os.getpid()}")
            imported = [name for name in list(sys.modules) if name not in inherited]
            temporary.write_text("\n".join(third_party_modules(imported)))
            os.replace(temporary, self.learned)

    def reap(self) -> None:
        """Collect every exited process (ours, and orphans when we are PID 1)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.child:
                self.child_status = _returncode(status)

    def wait_signal(self, timeout_s: float | None) -> int | None:
        if timeout_s is None:
            return signal.sigwaitinfo(HANDLED).si_signo
        info = signal.sigtimedwait(HANDLED, max(timeout_s, 0.0))
        return None if info is None else info.si_signo

    def on_signal(self, signum: int) -> None:
        if signum == signal.SIGCHLD:
            self.reap()
        elif signum in (signal.SIGTERM, signal.SIGINT) and self.stop_signal is None:
            self.stop_signal = signum

    def stop_child(self, signum: int) -> int:
        """Signal the child, wait for it (SIGKILL after the grace period); its returncode."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.child, signum)
        deadline = time.monotonic() + self.grace_s
        killed = False
        while True:
            self.reap()
            if self.child_status is not None:
                self.status(f"stopped {self.child} {self.child_status}")
                return self.child_status
            left = deadline - time.monotonic()
            if left <= 0 and not killed:
                print(
                    f"{PROGRAM}: child {self.child} did not stop in {self.grace_s:g} s: SIGKILL",
                    file=sys.stderr,
                )
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.child, signal.SIGKILL)
                killed = True
            signum_received = self.wait_signal(None if killed else left)
            if signum_received is not None:
                self.on_signal(signum_received)

    def run(self) -> int:
        self.fork()
        while True:
            self.reap()
            if self.child_status is not None:  # exited on its own
                self.status(f"stopped {self.child} {self.child_status}")
                return self.child_status
            if self.stop_signal is not None:
                return self.stop_child(self.stop_signal)
            received = self.wait_signal(None)
            if received == signal.SIGHUP:
                returncode = self.stop_child(signal.SIGTERM)
                if self.stop_signal is not None:  # asked to stop meanwhile
                    return returncode
                self._drain_hups()
                self.fork()
            elif received is not None:
                self.on_signal(received)

    def _drain_hups(self) -> None:
        """Saves that arrived while the old child stopped: one reload, this one."""
        while (received := self.wait_signal(0)) is not None:
            if received != signal.SIGHUP:
                self.on_signal(received)


def _exit_child(code: int) -> NoReturn:
    """End a child as the interpreter ends a process, without unwinding into the parent's code."""
    with contextlib.suppress(BaseException):
        threading._shutdown()  # type: ignore[attr-defined]  # joins non-daemon threads
    with contextlib.suppress(BaseException):
        atexit._run_exitfuncs()  # ddtrace flushes its spans, logging flushes its handlers
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    os._exit(code)


def _exit_like(returncode: int) -> NoReturn:
    """Exit as the child did: its code, or killed by the same signal (128+N when PID 1)."""
    if returncode >= 0:
        sys.exit(returncode)
    signum = -returncode
    sys.stdout.flush()
    sys.stderr.flush()
    with contextlib.suppress(OSError, ValueError):
        if signum not in (signal.SIGKILL, signal.SIGSTOP):  # (those cannot be handled)
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
        os.kill(os.getpid(), signum)
    sys.exit(128 + signum)  # PID 1 ignores its own default-handled signals


def _call(entry: importlib.metadata.EntryPoint) -> int:
    """Run a console script's entry point as its script would; the exit status."""
    try:
        result = entry.load()()
    except SystemExit as stop:
        if stop.code is None:
            return 0
        if isinstance(stop.code, int):
            return stop.code
        print(stop.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return result if isinstance(result, int) else 0


def _parse(argv: list[str]) -> tuple[str, list[str], int | None, float]:
    if not argv or argv[0] in ("-h", "--help"):
        raise UsageError(f"usage: python -m {PROGRAM} SCRIPT [ARG ...] (--help: what it does)")
    fd_text = os.environ.get(STATUS_FD_ENV, "").strip()
    grace_text = os.environ.get(GRACE_ENV, "").strip()
    try:
        status_fd = int(fd_text) if fd_text else None
        grace_s = float(grace_text) if grace_text else DEFAULT_GRACE_S
    except ValueError:
        raise UsageError(
            f"{PROGRAM}: {STATUS_FD_ENV} must be a file descriptor number and "
            f"{GRACE_ENV} a number of seconds"
        ) from None
    if status_fd is not None:
        try:
            os.fstat(status_fd)
        except OSError:
            raise UsageError(f"{PROGRAM}: {STATUS_FD_ENV}={status_fd} is not open") from None
        os.set_inheritable(status_fd, False)
    if not grace_s > 0:
        raise UsageError(f"{PROGRAM}: {GRACE_ENV} must be above 0, got {grace_text!r}")
    return argv[0], argv[1:], status_fd, grace_s


def main(argv: list[str] | None = None) -> NoReturn:
    args = sys.argv[1:] if argv is None else argv
    try:
        if args and args[0] in ("-h", "--help"):
            print(__doc__)
            sys.exit(0)
        script, rest, status_fd, grace_s = _parse(args)
        entry = resolve_script(script)
    except UsageError as error:
        print(error, file=sys.stderr)
        sys.exit(2)
    sys.argv = [script, *rest]
    if rest:  # `--help` and the like: the service answers, in this process
        sys.exit(_call(entry))
    never = warm(entry.module)
    saved_mask = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
    parent = Parent(
        lambda: _call(entry),
        status_fd=status_fd,
        grace_s=grace_s,
        saved_mask=saved_mask,
        never=never,
    )
    try:
        returncode = parent.run()
    finally:
        with contextlib.suppress(OSError):
            parent.learned.unlink()
    _exit_like(returncode)


if __name__ == "__main__":
    main()
