"""The poll loop: paced, bounded, interruptible.

Requests are started on the ticks of a :class:`RateLimiter` (or as fast as the
connection pool allows with rate 0), at most ``concurrency`` in flight, until
``count`` requests were sent, ``duration`` elapsed, or SIGINT/SIGTERM arrived.
Then the requests in flight are awaited (up to the request timeout) and the
tally summarised. A second signal abandons them.

With a heartbeat file, the loop touches it as it makes progress (each retry of
the start-up check, each request started, at most once a second): a stuck loop
leaves it to age, which is what the pod's liveness probe checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from polling_client.errors import ClientError, ConfigError
from polling_client.journey import CANARY_HEADER, UserJourney
from polling_client.ratelimit import RateLimiter
from polling_client.tally import PollSummary, Tally
from polling_client.workload import MixSchedule, Operation

Progress = Callable[[Tally, float], None]

_RETRY_S = 0.5
USER_AGENT = "speech-mesh-client/0.1 (client poll)"


@dataclass(frozen=True)
class PollOptions:
    gateway_url: str
    books_url: str | None
    rate: float  # requests per second; 0 means unpaced
    count: int | None
    duration_s: float | None
    concurrency: int
    timeout_s: float
    mix: dict[Operation, int]
    canary: str | None = None
    wait_s: float = 0.0  # how long to retry the start-up reachability check
    burst: int = 5
    heartbeat_file: Path | None = None


class Heartbeat:
    """Touches a file while the poll loop makes progress, at most once per interval."""

    def __init__(self, path: Path | None, interval_s: float = 1.0) -> None:
        self._path = path
        self._interval_s = interval_s
        self._last = -math.inf

    def beat(self) -> None:
        if self._path is None:
            return
        now = time.monotonic()
        if now - self._last < self._interval_s:
            return
        self._last = now
        try:
            self._path.touch()
        except OSError as error:
            raise ConfigError(
                f"cannot touch the heartbeat file {self._path}: {error.strerror}"
            ) from None


async def run_poll(
    options: PollOptions,
    *,
    progress: Progress | None = None,
    progress_interval_s: float = 1.0,
    notify: Callable[[str], None] = lambda message: None,
) -> PollSummary:
    limits = httpx.Limits(
        max_connections=options.concurrency, max_keepalive_connections=options.concurrency
    )
    timeout = httpx.Timeout(options.timeout_s, connect=min(options.timeout_s, 5.0))
    # A pinned poll pins every request, the start-up reachability check included:
    # that check is a traced request too, and must not land on another version.
    headers = {"user-agent": USER_AGENT}
    if options.canary:
        headers[CANARY_HEADER] = options.canary
    heartbeat = Heartbeat(options.heartbeat_file)
    heartbeat.beat()  # an unwritable path fails here, before any request
    async with httpx.AsyncClient(limits=limits, timeout=timeout, headers=headers) as http:
        await _check_reachable(http, options, notify, heartbeat)
        journey = UserJourney(
            http,
            gateway_url=options.gateway_url,
            books_url=options.books_url,
            canary=options.canary,
        )
        return await _Poller(options, journey, progress, progress_interval_s, heartbeat).run()


async def _check_reachable(
    http: httpx.AsyncClient,
    options: PollOptions,
    notify: Callable[[str], None],
    heartbeat: Heartbeat,
) -> None:
    """Fail with one clear line if an entry point does not answer at all.

    Any HTTP answer will do (even a 503: that is for the tally to count). With
    ``wait_s`` the check is retried until then, e.g. while a pod's sidecar starts.
    """
    targets = {options.gateway_url.rstrip("/") + "/": "gateway"}
    if options.books_url:
        targets[options.books_url.rstrip("/") + "/books?limit=1"] = "books"
    deadline = time.monotonic() + options.wait_s
    for url, what in targets.items():
        told = False
        while True:
            heartbeat.beat()
            try:
                await http.get(url)
                break
            except httpx.HTTPError as exc:
                if time.monotonic() >= deadline:
                    waited = f" after waiting {options.wait_s:g}s" if options.wait_s else ""
                    raise ClientError(
                        f"cannot reach the {what} at {url}{waited}: {type(exc).__name__}"
                    ) from None
                if not told:
                    notify(f"waiting up to {options.wait_s:g}s for the {what} at {url}")
                    told = True
            await asyncio.sleep(_RETRY_S)


class _Poller:
    def __init__(
        self,
        options: PollOptions,
        journey: UserJourney,
        progress: Progress | None,
        progress_interval_s: float,
        heartbeat: Heartbeat,
    ) -> None:
        self._options = options
        self._heartbeat = heartbeat
        self._journey = journey
        self._progress = progress
        self._progress_interval_s = progress_interval_s
        self._tally = Tally()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(options.concurrency)
        self._started = time.monotonic()
        self._interrupted = False

    async def run(self) -> PollSummary:
        loop = asyncio.get_running_loop()
        producer = asyncio.create_task(self._produce())
        reporter = asyncio.create_task(self._report()) if self._progress else None

        def on_signal() -> None:
            self._interrupted = True
            if not producer.done():
                producer.cancel()
            else:
                for task in self._in_flight:
                    task.cancel()

        stop_at_deadline = (
            None
            if self._options.duration_s is None
            else loop.call_later(self._options.duration_s, producer.cancel)
        )
        signals = (signal.SIGINT, signal.SIGTERM)
        for signum in signals:
            loop.add_signal_handler(signum, on_signal)
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await producer
            if self._in_flight:
                await asyncio.wait(self._in_flight, timeout=self._options.timeout_s + 1.0)
            for task in self._in_flight:
                task.cancel()
        finally:
            if stop_at_deadline:
                stop_at_deadline.cancel()
            for signum in signals:
                loop.remove_signal_handler(signum)
            if reporter:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
        elapsed = time.monotonic() - self._started
        if self._progress:
            self._progress(self._tally, elapsed)
        return replace(self._tally.summary(elapsed), interrupted=self._interrupted)

    async def _produce(self) -> None:
        options = self._options
        schedule = MixSchedule(options.mix)
        limiter = RateLimiter(options.rate, burst=options.burst) if options.rate > 0 else None
        deadline = None if options.duration_s is None else self._started + options.duration_s
        sent = 0
        while options.count is None or sent < options.count:
            if limiter:
                await limiter.acquire()
            await self._slots.acquire()
            if deadline is not None and time.monotonic() >= deadline:
                self._slots.release()
                return
            task = asyncio.create_task(self._one(schedule.next()))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            sent += 1
            self._heartbeat.beat()

    async def _one(self, operation: Operation) -> None:
        try:
            self._tally.record(await self._journey.run(operation))
        finally:
            self._slots.release()

    async def _report(self) -> None:
        assert self._progress is not None
        while True:
            await asyncio.sleep(self._progress_interval_s)
            self._progress(self._tally, time.monotonic() - self._started)
