"""A pool of worker processes, each owning one eSpeak NG instance.

eSpeak NG is a process-global, non-thread-safe library, so the only way to use
more than one core is more than one process. Each worker is a spawned process
that loads the library once and then synthesizes one segment at a time from
its pipe. The parent keeps a FIFO of segments; an idle worker takes the next
one. A per-worker reader thread waits on the pipe (blocking reads release the
GIL) and resolves the asyncio future, so the event loop never blocks.

Cancellation: a segment still in the queue is dropped; a segment being
synthesized is aborted inside eSpeak (the synthesis callback checks a shared
"cancelled job id" and returns 1). A worker that dies is replaced and its
segment fails with :class:`WorkerCrashed`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import multiprocessing
import signal
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from tts_backend.engines.espeak_native import EspeakNative, NativeVoice, SynthesisAborted

log = logging.getLogger(__name__)

_CONTEXT = multiprocessing.get_context("spawn")


class WorkerCrashed(RuntimeError):
    """The worker process died while synthesizing."""


class SegmentFailed(RuntimeError):
    """eSpeak NG reported an error for this segment."""


@dataclass
class _Job:
    job_id: int
    text: str
    voice: str
    words_per_minute: int
    future: asyncio.Future[bytes]
    loop: asyncio.AbstractEventLoop


@dataclass
class _Worker:
    index: int
    process: Any
    connection: Connection
    cancelled_job: Synchronized[int]
    current: _Job | None = None
    reader: threading.Thread | None = None


@dataclass(frozen=True)
class EngineInfo:
    sample_rate: int
    voices: tuple[NativeVoice, ...]
    deterministic: bool


def _worker_main(connection: Connection, cancelled_job: Synchronized[int]) -> None:
    """Body of a worker process: load the engine, then serve segments forever.

    Signals meant for the whole process group (Ctrl-C, ``kill -- -PGID``) are
    ignored: the parent decides when workers stop (None on the pipe, or EOF
    when the parent is gone).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    engine = EspeakNative()
    connection.send(("ready", engine.sample_rate, engine.list_voices(), engine.deterministic))
    while True:
        try:
            message = connection.recv()
        except EOFError:
            return
        if message is None:
            return
        job_id, text, voice, words_per_minute = message

        def should_abort(job_id: int = job_id) -> bool:
            return bool(cancelled_job.value == job_id)

        try:
            pcm = engine.synthesize(text, voice, words_per_minute, should_abort)
            connection.send((job_id, "ok", pcm))
        except SynthesisAborted:
            connection.send((job_id, "aborted", b""))
        except Exception as error:
            connection.send((job_id, "error", str(error)))


class EspeakPool:
    """Fixed-size pool of eSpeak NG worker processes."""

    def __init__(self, size: int) -> None:
        self.size = size
        # By index: workers start concurrently and a replacement takes its slot.
        self._workers: dict[int, _Worker] = {}
        self._idle: collections.deque[_Worker] = collections.deque()
        self._queue: collections.deque[_Job] = collections.deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._closed = False
        self.info: EngineInfo | None = None

    async def start(self) -> EngineInfo:
        """Start every worker and wait until each has loaded eSpeak NG."""
        loop = asyncio.get_running_loop()
        starts = [loop.run_in_executor(None, self._spawn, index) for index in range(self.size)]
        infos = await asyncio.gather(*starts)
        self.info = infos[0]
        return self.info

    def _spawn(self, index: int) -> EngineInfo:
        parent_end, child_end = _CONTEXT.Pipe()
        cancelled_job: Synchronized[int] = _CONTEXT.Value("q", 0, lock=False)
        process = _CONTEXT.Process(
            target=_worker_main,
            args=(child_end, cancelled_job),
            name=f"espeak-worker-{index}",
            daemon=True,
        )
        process.start()
        child_end.close()
        _, sample_rate, voices, deterministic = parent_end.recv()
        worker = _Worker(index, process, parent_end, cancelled_job)
        worker.reader = threading.Thread(
            target=self._read_results, args=(worker,), name=f"espeak-reader-{index}", daemon=True
        )
        with self._lock:
            closed = self._closed
            if not closed:
                self._workers[index] = worker
                self._idle.append(worker)
        if closed:
            # close() ran while this worker was loading (SIGTERM during start-up)
            # and never saw it, so stop it here: workers ignore SIGTERM, and a
            # live worker would keep the parent's exit waiting forever.
            with contextlib.suppress(OSError, ValueError):
                parent_end.send(None)
            _join_all([worker])
            raise WorkerCrashed("the engine pool was shut down during start-up")
        worker.reader.start()
        self._dispatch()
        return EngineInfo(sample_rate, tuple(voices), deterministic)

    async def synthesize(self, text: str, voice: str, words_per_minute: int) -> bytes:
        """PCM for one segment. Cancelling the awaiting task cancels the segment."""
        if self._closed:
            raise WorkerCrashed("the engine pool is shut down")
        loop = asyncio.get_running_loop()
        job = _Job(next(self._ids), text, voice, words_per_minute, loop.create_future(), loop)
        with self._lock:
            self._queue.append(job)
        self._dispatch()
        try:
            return await job.future
        except asyncio.CancelledError:
            self._cancel(job)
            raise

    def _cancel(self, job: _Job) -> None:
        with self._lock:
            with contextlib.suppress(ValueError):
                self._queue.remove(job)
                return
            for worker in self._workers.values():
                if worker.current is job:
                    worker.cancelled_job.value = job.job_id

    def _dispatch(self) -> None:
        """Hand queued segments to idle workers."""
        while True:
            with self._lock:
                if not self._queue or not self._idle:
                    return
                job = self._queue.popleft()
                worker = self._idle.popleft()
                worker.current = job
            try:
                worker.connection.send((job.job_id, job.text, job.voice, job.words_per_minute))
            except (OSError, ValueError) as error:
                self._settle(job, WorkerCrashed(f"worker {worker.index} unreachable: {error}"))

    def _read_results(self, worker: _Worker) -> None:
        """Reader thread: one per worker, turns pipe messages into future results."""
        while True:
            try:
                job_id, status, payload = worker.connection.recv()
            except (EOFError, OSError):
                self._on_worker_exit(worker)
                return
            with self._lock:
                job = worker.current
                worker.current = None
                if job is None or job.job_id != job_id:
                    continue
                if not self._closed:
                    self._idle.append(worker)
            log.debug(
                "segment " + ("synthesized" if status == "ok" else status),
                extra={"worker": worker.index, "job": job_id},
            )
            if status == "ok":
                self._settle(job, payload)
            elif status == "aborted":
                self._settle(job, None)
            else:
                self._settle(job, SegmentFailed(payload))
            self._dispatch()

    def _on_worker_exit(self, worker: _Worker) -> None:
        with self._lock:
            job = worker.current
            worker.current = None
            closed = self._closed
        if closed:
            return
        log.error("espeak worker exited", extra={"worker": worker.index})
        if job is not None:
            self._settle(job, WorkerCrashed(f"espeak worker {worker.index} died"))
        with contextlib.suppress(WorkerCrashed):  # the pool closed meanwhile
            self._spawn(worker.index)

    @staticmethod
    def _settle(job: _Job, outcome: bytes | BaseException | None) -> None:
        """Resolve the job's future from any thread; None means it was aborted."""

        def apply() -> None:
            if job.future.done():
                return
            if outcome is None:
                job.future.cancel()
            elif isinstance(outcome, BaseException):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome)

        with contextlib.suppress(RuntimeError):  # loop already closed
            job.loop.call_soon_threadsafe(apply)

    async def close(self) -> None:
        """Stop every worker (queued segments fail)."""
        with self._lock:
            self._closed = True
            queued = list(self._queue)
            self._queue.clear()
            workers = list(self._workers.values())
        for job in queued:
            self._settle(job, WorkerCrashed("the engine pool is shut down"))
        for worker in workers:
            with contextlib.suppress(OSError, ValueError):
                worker.connection.send(None)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, _join_all, workers)


def _join_all(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.process.join(timeout=5)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(timeout=5)
        worker.connection.close()
