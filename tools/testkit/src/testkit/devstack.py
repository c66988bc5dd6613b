"""Test and benchmark helpers for devstack: Istio YAML on disk, small real HTTP upstreams,
the gateway in the caller's event loop, and the stack as a subprocess.

Not used by the stack itself; imported by `tools/devstack/tests` and `bench/`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import math
import os
import re
import shutil
import textwrap
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiohttp import web
from devstack.gateway.admin import start_admin
from devstack.gateway.http1 import EdgeLimits
from devstack.gateway.istio import GatewayConfig, load_gateway_config
from devstack.gateway.outlier import OutlierDetector
from devstack.gateway.proxy import Proxy, make_server
from devstack.gateway.server import resolve_upstreams
from devstack.gatewaylink import GatewayLink
from devstack.services import Ports
from servicekit.scripts import console_script

from testkit.process import REPO_ROOT, ServiceProcess, free_port

_T = TypeVar("_T")

GATEWAY_YAML = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: apps}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc, namespace: apps}
spec:
  host: svc.apps.svc.cluster.local
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
"""


def virtual_service(*rules: str) -> str:
    """A VirtualService ``svc`` bound to ``apps/gw`` for any host, with these ``http`` rules."""
    head = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
        "metadata: {name: svc, namespace: apps}\n"
        "spec:\n  hosts: ['*']\n  gateways: [apps/gw]\n  http:\n"
    )
    return head + "".join(rules)


def split_rule(v1: int, v2: int, extra: str = "") -> str:
    """An ``http`` rule splitting ``svc`` between subsets v1 and v2 (``extra``: more keys)."""
    return (
        "  - route:\n"
        f"    - {{destination: {{host: svc, subset: v1}}, weight: {v1}}}\n"
        f"    - {{destination: {{host: svc, subset: v2}}, weight: {v2}}}\n"
        + "".join(f"    {line}\n" for line in extra.splitlines())
    )


def outlier_rule(policy: str) -> str:
    """A second DestinationRule document for ``svc`` whose ``outlierDetection`` is ``policy``
    (YAML keys, one a line); for ``write_istio_dir(..., extra=...)``."""
    head = (
        "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        "metadata: {name: svc-outlier, namespace: apps}\n"
        "spec:\n  host: svc\n  trafficPolicy:\n    outlierDetection:\n"
    )
    return head + textwrap.indent(textwrap.dedent(policy), "      ")


def write_istio_dir(directory: Path, virtual_service: str, extra: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "gateway.yaml").write_text(GATEWAY_YAML + extra)
    (directory / "vs.yaml").write_text(textwrap.dedent(virtual_service))
    return directory


def save_file(path: Path, text: str) -> None:
    """Replace ``path`` in one step, as editors save (a watcher never sees half a file)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


# --- the gateway in the caller's event loop -----------------------------------


@dataclass
class InProcessGateway:
    """The real proxy served on a free loopback port (and its admin API, when asked for)."""

    url: str
    proxy: Proxy
    config: GatewayConfig
    admin_socket: Path | None = None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def link(self) -> GatewayLink:
        """The stack's client of the admin API (needs ``admin_socket``)."""
        assert self.admin_socket is not None, "started without an admin socket"
        return GatewayLink(self.admin_socket)


@contextlib.asynccontextmanager
async def serving_gateway(
    istio_dir: Path,
    upstream_urls: dict[str, str],
    *,
    limits: EdgeLimits | None = None,
    admin_socket: Path | None = None,
    **proxy_options: Any,
) -> AsyncIterator[InProcessGateway]:
    """The proxy built from ``istio_dir`` as ``local-gateway`` builds it (Envoy's edge
    ``limits``, the admin API on ``admin_socket`` if given), served until the block ends."""
    config = load_gateway_config(istio_dir)
    proxy = Proxy(
        config.table,
        resolve_upstreams(config, upstream_urls),
        OutlierDetector(config.outlier),
        limits=limits,
        **proxy_options,
    )
    await proxy.start()
    runner = web.ServerRunner(make_server(proxy.handle, limits), handle_signals=False)
    await runner.setup()
    admin: web.AppRunner | None = None
    try:
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        if admin_socket is not None:
            admin = await start_admin(proxy, admin_socket)
        yield InProcessGateway(f"http://127.0.0.1:{port}", proxy, config, admin_socket)
    finally:
        if admin is not None:
            await admin.cleanup()
        await runner.cleanup()
        await proxy.close()


@dataclass
class Upstream:
    """A real HTTP server on loopback that answers with its name and counts requests."""

    name: str
    port: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    fail_first: int = 0
    fail_status: int = 503
    delay_first_s: float = 0.0
    last_headers: dict[str, str] = field(default_factory=dict)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        count = self.calls[path] = self.calls.get(path, 0) + 1
        self.last_headers = dict(request.headers)
        headers = {"x-served-by": self.name}
        if path == "/reset" and count <= self.fail_first:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if path == "/slow" and count == 1 and self.delay_first_s:
            await asyncio.sleep(self.delay_first_s)
        if path.startswith("/fail") and count <= self.fail_first:
            return web.Response(status=self.fail_status, headers=headers, text="failing")
        if path == "/hop-by-hop":  # names a header in Connection: for this hop only
            headers |= {"Connection": "x-hop, keep-alive", "x-hop": "1", "x-end": "1"}
            return web.Response(headers=headers, text="ok")
        if path == "/big":
            return web.Response(body=b"x" * (1024 * 1024 + 7), headers=headers)
        if path == "/chunked":
            chunked = web.StreamResponse(headers=headers)
            chunked.enable_chunked_encoding()
            await chunked.prepare(request)
            for index in range(3):
                await chunked.write(f"part{index};".encode())
            await chunked.write_eof()
            return chunked
        body = await request.read()
        return web.json_response(
            {"name": self.name, "path": request.path_qs, "body": body.decode()}, headers=headers
        )

    async def start(self, port: int | None = None) -> None:
        """Serve on ``port`` (a free one by default; the same one again: a restart)."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port() if port is None else port
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def names_served(client: httpx.AsyncClient, url: str, n: int = 20) -> set[str]:
    """Who answered ``n`` GETs of ``url`` (each a 200 from an :class:`Upstream`): their names."""
    names = set()
    for _ in range(n):
        response = await client.get(url)
        assert response.status_code == 200, response.text
        names.add(response.json()["name"])
    return names


def binomial_interval(n: int, p: float, confidence: float = 1 - 1e-6) -> tuple[int, int]:
    """The central ``confidence`` interval of Binomial(n, p), exact."""
    tail = (1 - confidence) / 2
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    low, cumulative = 0, 0.0
    while cumulative + pmf[low] < tail:
        cumulative += pmf[low]
        low += 1
    high, cumulative = n, 0.0
    while cumulative + pmf[high] < tail:
        cumulative += pmf[high]
        high -= 1
    return low, high


async def count_versions(
    url: str, n: int, headers: dict[str, str] | None = None, concurrency: int = 16
) -> collections.Counter[str]:
    """``GET url/`` n times (``concurrency`` at once): answers by ``x-tts-version``, or status."""
    counts: collections.Counter[str] = collections.Counter()
    queue = iter(range(n))
    async with httpx.AsyncClient(timeout=30.0, headers=headers) as client:

        async def worker() -> None:
            for _ in queue:
                response = await client.get(f"{url}/")
                key = response.headers.get("x-tts-version", "?")
                if response.status_code != 200:
                    key = f"status {response.status_code}"
                counts[key] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return counts


# --- the stack as a subprocess ------------------------------------------------

# Files of the workspace the stack tests edit (relative to its root), and the header
# the routes in k8s/istio pin v1 with.
V1_APP = Path("services/tts_v1/src/tts_v1/app.py")
VIRTUAL_SERVICES = Path("k8s/istio/virtualservices.yaml")
PIN_V1 = {"x-canary": "v1"}

# What `stack up` starts, in its order (and `client` last with --with-client).
STACK_SERVICES = ("apm-test-agent", "books", "tts-backend", "tts-v1", "tts-v2", "local-gateway")

# What a copy of the repository needs to run the stack from its own sources.
WORKSPACE_PARTS = ("pyproject.toml", "uv.lock", "libs", "protos", "services", "tools", "k8s")


def copy_workspace(source: Path, destination: Path) -> Path:
    """Copy the uv workspace at ``source``: sources, metadata, k8s/ (no venv, caches, tests)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".*_cache", "tests", "data")
    destination.mkdir(parents=True)
    for part in WORKSPACE_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, destination / part, ignore=ignore)
        else:
            shutil.copy2(source / part, destination / part)
    return destination


STARTED_LINE = re.compile(r"started (\S+) \(pid (\d+)\)")


def stack_command(*args: str) -> list[str]:
    """``uv run stack up ...`` as the README says (``--no-sync``: the test's env is synced)."""
    uv = shutil.which("uv")
    if uv is None:
        return [console_script("stack"), "up", *args]
    return [uv, "run", "--no-sync", "stack", "up", *args]


def free_stack_ports() -> Ports:
    """Eight distinct ports that were free on 127.0.0.1 a moment ago, for ``stack up``."""
    ports: list[int] = []
    while len(ports) < 8:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return Ports(*ports)


def wait_for_output(proc: ServiceProcess, pattern: str, timeout: float = 60.0) -> re.Match[str]:
    """Wait until the process has printed a line matching ``pattern``; fail if it exits."""
    regex = re.compile(pattern)
    return _wait_for(proc, regex.search, repr(pattern), timeout)


# The gateway's line when it applies the canary weights file, as JSON (``"weights":{...}``)
# or as the stack prints it (``weights={...}``).
_WEIGHTS_APPLIED = re.compile(r'canary weights applied.*?\bweights"?[=:] ?(\{[^}]*\})')


def wait_for_weights(
    proc: ServiceProcess, weights: Mapping[str, int], timeout: float = 60.0
) -> None:
    """Wait until the gateway (or the stack running it) logged that ``weights`` are in force.

    The gateway reads its weights file every ``POLL_S``: right after `client canary`
    writes it, requests may still be routed by the weights before.
    """
    wanted = dict(weights)

    def applied(output: str) -> bool:
        return wanted in (json.loads(m[1]) for m in _WEIGHTS_APPLIED.finditer(output))

    _wait_for(proc, applied, f"'canary weights applied' {wanted}", timeout)


def _wait_for(
    proc: ServiceProcess, found: Callable[[str], _T | None], what: str, timeout: float
) -> _T:
    """Poll the process's output until ``found`` returns something; fail if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = found(proc.output())
        if result:
            return result
        if not proc.is_running():
            raise RuntimeError(f"{proc.name} exited before {what}:\n{proc.output()[-4000:]}")
        time.sleep(0.05)
    raise TimeoutError(f"no {what} after {timeout}s:\n{proc.output()[-4000:]}")


@dataclass
class RunningStack:
    """A ``stack up`` subprocess: its ports, the tree it runs from, its data dir."""

    proc: ServiceProcess
    ports: Ports
    root: Path
    data_dir: Path
    deadline_s: float = 90.0

    @property
    def url(self) -> str:
        return self.ports.gateway_url

    def output(self) -> str:
        return self.proc.output()

    def read(self, relative: Path) -> str:
        return (self.root / relative).read_text()

    def save(self, relative: Path, text: str) -> None:
        """Save a file of ``root`` as an editor does: a new file renamed over the old one."""
        save_file(self.root / relative, text)

    def wait_for_line(self, pattern: str, since: int) -> float:
        """Seconds until the stack printed a line matching ``pattern`` after offset ``since``;
        fails if the stack exits or ``deadline_s`` passes first."""
        started = time.monotonic()
        regex = re.compile(pattern, re.MULTILINE)
        while not regex.search(self.output(), since):
            assert self.proc.is_running(), self.output()[-4000:]
            elapsed = time.monotonic() - started
            assert elapsed < self.deadline_s, (pattern, self.output()[since:][-4000:])
            time.sleep(0.02)
        return time.monotonic() - started

    @contextlib.contextmanager
    def restoring(self, relative: Path, *ready_lines: str) -> Iterator[str]:
        """The text of ``relative``, saved back when the block ends (however it ends);
        then each of ``ready_lines`` is waited for, as printed after that save."""
        original = self.read(relative)
        try:
            yield original
        finally:
            mark = len(self.output())
            self.save(relative, original)
            for pattern in ready_lines:
                self.wait_for_line(pattern, mark)


@contextlib.contextmanager
def running_stack(
    root: Path,
    data_dir: Path,
    *flags: str,
    command: Callable[..., list[str]] = stack_command,
    deadline_s: float = 90.0,
) -> Iterator[RunningStack]:
    """``command(ports, --data-dir, *flags)`` (``stack up``) on free ports with ``root`` as
    its working directory, once its banner says it is ready; stopped when the block ends."""
    ports = free_stack_ports()
    proc = ServiceProcess(
        command(*ports.flags(), f"--data-dir={data_dir}", *flags), name="stack", cwd=root
    )
    proc.start()
    try:
        wait_for_output(proc, r"Ctrl-C stops everything", timeout=deadline_s)
        yield RunningStack(proc, ports, root, data_dir, deadline_s)
    finally:
        proc.stop()


@contextlib.contextmanager
def stack_on_a_copy(base: Path, deadline_s: float = 90.0) -> Iterator[RunningStack]:
    """``stack up`` run from a copy of this workspace (``base/repo``, data in ``base/data``):
    a test edits the copy and the running stack follows, the checkout stays as it is.

    Started with this environment's own ``stack`` script: the copy has no environment of its
    own to ``uv run`` in; the services run the copy's sources (the stack puts its ``src/``
    directories on PYTHONPATH)."""
    root = copy_workspace(REPO_ROOT, base / "repo")

    def command(*args: str) -> list[str]:
        return [console_script("stack"), "up", *args]

    with running_stack(root, base / "data", command=command, deadline_s=deadline_s) as stack:
        yield stack


def started_pids(output: str) -> dict[str, list[int]]:
    """Every pid the stack reported starting, by service, in order."""
    pids: dict[str, list[int]] = {}
    for name, pid in STARTED_LINE.findall(output):
        pids.setdefault(name, []).append(int(pid))
    return pids


def live_processes_in_groups(groups: set[int]) -> list[int]:
    """Pids of live processes (zombies excluded) whose process group is one of ``groups``."""
    alive: list[int] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()
        state, pgid = fields[0], int(fields[2])
        if pgid in groups and state != "Z":
            alive.append(int(stat.parent.name))
    return alive


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
