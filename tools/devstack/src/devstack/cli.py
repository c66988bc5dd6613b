"""``stack``: run the whole system locally (``uv run stack up``)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shlex
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from repomodel.workspace import find_workspace_root, load_workspace
from servicekit.durations import parse_duration

from devstack import images
from devstack import status as status_view
from devstack.gatewaylink import GatewayLink
from devstack.ports import port_problems
from devstack.postgres import LocalPostgres, PostgresUnavailable
from devstack.reload import Reloader, SourceMap, run_from_sources
from devstack.services import Ports, Probe, ServiceSpec, StackConfig, build_specs
from devstack.stackstate import StackState, read_state, runner_alive, state_path
from devstack.supervisor import Output, Stack

PROGRAM = "stack"
DEFAULT_DATA_DIR = Path("data")
DEFAULT_ISTIO_DIR = Path("k8s/istio")

DESCRIPTION = """\
Start books, tts-backend, text-to-speech v1 and v2, the local gateway and the
Datadog APM test agent as processes on 127.0.0.1; wait until every one is
ready; print the gateway URL and example commands. Ctrl-C (or SIGTERM, or
SIGHUP) stops everything. A service that dies is restarted with backoff; one
that dies 5 times within a minute stops the stack (after an edit to its source,
it waits for the next save instead). Readiness decides, as in Kubernetes: a
service the stack restarts, or whose probe fails twice (every 5 s), is out of
the gateway's pick, and back the moment its probe passes (`stack status` shows
it). The APM test agent keeps the traces of the last --trace-retention.

Services run from the sources of the uv workspace the current directory is in.
Live reload (unless --no-reload): a saved .py file restarts the services that
import it (their own src/ and the workspace members they depend on), on the
same ports with the same data; a service that does not come back waits for the
next save while the others keep running. The gateway reloads its routes when a
file in the Istio directory changes; an edit it cannot apply keeps the previous
routes. A change to uv.lock or a pyproject.toml needs a restart of the stack."""

EPILOG = """\
--port-base B: gateway B, books B+1, tts-v1 B+2, tts-v2 B+3, tts-backend B+4,
agent B+5, OTLP HTTP B+6, OTLP gRPC B+7 (PostgreSQL B+8 with --books-db
postgres); a per-service flag overrides it."""

DEFAULT_POSTGRES_PORT = 5433  # not 5432: leave a system PostgreSQL alone
POSTGRES_DATABASE = "books"

_PORT_FLAGS = {
    "gateway": "gateway_port",
    "books": "books_port",
    "tts_v1": "tts_v1_port",
    "tts_v2": "tts_v2_port",
    "tts_backend": "tts_backend_port",
    "agent": "agent_port",
    "otlp_http": "otlp_http_port",
    "otlp_grpc": "otlp_grpc_port",
}


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port (1-65535)")
    return value


def _duration(text: str) -> str:
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text}: must be above 0")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description="The local stack.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = commands.add_parser(
        "up",
        help="start every service and wait for Ctrl-C",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument(
        "--with-client",
        action="store_true",
        help="also run the polling client (client poll) against the gateway",
    )
    up.add_argument(
        "--client-rate", type=float, default=2.0, help="its requests per second (default 2)"
    )
    up.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="SQLite database and audio files, kept across runs (default data/)",
    )
    up.add_argument("--clean", action="store_true", help="delete the data directory first")
    up.add_argument(
        "--books-db",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="books' database: sqlite (default, DATA_DIR/books.db) or postgres (a local "
        "PostgreSQL server the stack starts, data in DATA_DIR/postgres; needs initdb and "
        "postgres on PATH or in /usr/lib/postgresql/*/bin)",
    )
    up.add_argument(
        "--postgres-port",
        type=_port,
        metavar="PORT",
        help=f"its port with --books-db postgres (default {DEFAULT_POSTGRES_PORT})",
    )
    up.add_argument(
        "--images",
        action="store_true",
        help="run books, tts-backend, the fronts (and the client) from their container images "
        "(speech-mesh/*, built from services/Dockerfile) as their pods run them, instead of "
        "the local virtualenv; the gateway and the APM test agent stay local",
    )
    up.add_argument(
        "--istio-dir",
        type=Path,
        default=DEFAULT_ISTIO_DIR,
        help="Istio resources the gateway routes by (default k8s/istio)",
    )
    up.add_argument("--port-base", type=_port, help="consecutive ports from this one (below)")
    defaults = Ports()
    for field, dest in _PORT_FLAGS.items():
        up.add_argument(
            f"--{dest.replace('_', '-')}",
            type=_port,
            dest=dest,
            metavar="PORT",
            help=f"(default {getattr(defaults, field)})",
        )
    up.add_argument(
        "--no-reload",
        dest="reload",
        action="store_false",
        help="do not restart services when their source changes, nor reload the routes",
    )
    up.add_argument(
        "--trace-retention",
        type=_duration,
        default="10m",
        metavar="DURATION",
        help="how long the APM test agent keeps a trace (default 10m; e.g. 30s, 1h): older "
        "ones are dropped while the stack runs, so memory stays bounded; client compare "
        "reads what is kept",
    )
    up.add_argument(
        "--ready-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for every service to be ready (default 60)",
    )
    status = commands.add_parser(
        "status",
        help="show each service of the running stack and the gateway's weights",
        description="Each service of the stack running on DATA_DIR: state, readiness, pid, "
        "port, restarts, last reload and its cause; then the gateway's routes with the "
        "weights in force and each destination's readiness and outlier ejection, asked "
        "of the gateway itself. Exit status 1 when no stack runs there.",
    )
    status.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="the data directory of the stack (default data/)",
    )
    status.add_argument(
        "--format", choices=("text", "json"), default="text", help="output (default text)"
    )
    return parser


def show_status(args: argparse.Namespace) -> int:
    collected = status_view.collect(args.data_dir.resolve())
    if collected is None:
        print(f"{PROGRAM}: {status_view.no_stack(args.data_dir)}", file=sys.stderr)
        return 1
    text = (
        status_view.as_json(collected) if args.format == "json" else status_view.render(collected)
    )
    print(text)
    return 0


def config_from_args(args: argparse.Namespace) -> StackConfig:
    ports = Ports.from_base(args.port_base) if args.port_base else Ports()
    overrides = {
        field: getattr(args, dest)
        for field, dest in _PORT_FLAGS.items()
        if getattr(args, dest) is not None
    }
    if overrides:
        ports = Ports(**{**ports.__dict__, **overrides})
    return StackConfig(
        ports=ports,
        data_dir=args.data_dir,
        istio_dir=args.istio_dir,
        with_client=args.with_client,
        client_rate=args.client_rate,
        reload=args.reload,
        trace_retention=args.trace_retention,
    )


def wipe_data_dir(path: Path) -> None:
    """``--clean``: delete the data directory, refusing anything that looks like more."""
    resolved = path.resolve()
    forbidden = {Path("/").resolve(), Path.home().resolve(), Path.cwd().resolve()}
    if resolved in forbidden or (resolved / ".git").exists() or resolved in Path.cwd().parents:
        raise SystemExit(f"{PROGRAM}: refusing to delete {resolved} for --clean")
    if resolved.exists():
        shutil.rmtree(resolved)


def banner(
    config: StackConfig, seconds: float, output: Output, sources: SourceMap | None = None
) -> None:
    gateway = config.gateway_url
    if sources is None:
        code = "  code            the installed packages (not in a uv workspace)"
    else:
        reload = "live reload on" if config.reload else "no reload (--no-reload)"
        code = f"  code            {sources.workspace.root} ({reload})"
    lines = [
        f"all services ready in {seconds:.1f} s",
        f"  gateway         {gateway}",
        f"  APM test agent  {config.agent_url}",
        f"  data            {config.data_dir.resolve()}",
        f"  books database  {config.books_database_url or 'SQLite, books.db in the data dir'}",
        code,
        *(
            [
                "  (an edit under tools/devstack restarts the gateway, never this runner: "
                "the stack says when it needs Ctrl-C and a new stack up)"
            ]
            if sources is not None and config.reload
            else []
        ),
        "try:",
        '  curl -H \'Content-Type: application/json\' -d \'{"author": "occupytheweb",'
        f' "title": "Network Basics for Hackers"}}\' -X POST {gateway}/books',
        '  curl -H \'Content-Type: application/json\' -d \'{"author": "occupytheweb",'
        f' "title": "Linux Basics for Hackers"}}\' -X POST {gateway}/books',
        f"  curl {gateway}/books",
        f"  for i in $(seq 20); do curl -s {gateway}/; done | sort | uniq -c",
        f"  uv run client poll --gateway {gateway} --count 200",
        f"  uv run client compare --agent {config.agent_url}",
        "  uv run stack status   (each service, and the gateway's weights)",
        "Ctrl-C stops everything.",
    ]
    for line in lines:
        output.stack(line)


def postgres_port(args: argparse.Namespace) -> int:
    if args.postgres_port:
        return int(args.postgres_port)
    return int(args.port_base) + 8 if args.port_base else DEFAULT_POSTGRES_PORT


def stop_postgres_leftover(data_dir: Path, port: int) -> None:
    """Stop a server an earlier stack (killed) left running on this data directory."""
    try:
        left = LocalPostgres(data_dir / "postgres", port).stop_leftover()
    except PostgresUnavailable:
        return  # no binaries: said by prepare_postgres
    if left:
        print(f"{PROGRAM}: {left}", flush=True)


def prepare_postgres(data_dir: Path, port: int) -> LocalPostgres:
    """The local server's data directory (initdb once)."""
    server = LocalPostgres(data_dir / "postgres", port)
    server.initialise()
    return server


def postgres_spec(server: LocalPostgres) -> ServiceSpec:
    """PostgreSQL as one of the stack's supervised services: started first, stopped last.

    It stops with the stack even when the stack is killed (SIGINT, its fast
    shutdown, as the parent-death signal), and a server an earlier stack left
    behind is stopped at the next start (:meth:`LocalPostgres.stop_leftover`).
    """
    return ServiceSpec(
        "postgres",
        server.command(death_signal="INT"),
        {},
        Probe("command", shlex.join(server.ready_command())),
        stop_last=True,
        start_first=True,
        port=server.port,
        death_signal=signal.SIGINT,
        stop_signal=signal.SIGINT,
    )


def create_books_database(server: LocalPostgres) -> Callable[[], Coroutine[Any, Any, str | None]]:
    async def create() -> str | None:
        def run() -> None:
            query = f"SELECT 1 FROM pg_database WHERE datname = '{POSTGRES_DATABASE}'"
            if not server.psql(query).strip():
                server.create_database(POSTGRES_DATABASE)

        try:
            await asyncio.to_thread(run)
        except PostgresUnavailable as error:
            return f"--books-db postgres: {error}; stopping the stack"
        return None

    return create


def up(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    ports = config.ports.named()
    if args.books_db == "postgres":
        ports["postgres"] = postgres_port(args)
        # Before the port check: a server an earlier stack left behind holds its port.
        stop_postgres_leftover(config.data_dir.resolve(), ports["postgres"])
    problems = port_problems(ports)
    if not config.istio_dir.is_dir():
        problems.append(f"Istio directory {config.istio_dir} does not exist (--istio-dir)")
    if problems:
        for problem in problems:
            print(f"{PROGRAM}: {problem}", file=sys.stderr)
        print(f"{PROGRAM}: nothing started", file=sys.stderr)
        return 1
    if args.clean:
        wipe_data_dir(config.data_dir)
    (config.data_dir / "snapshots").mkdir(parents=True, exist_ok=True)
    postgres: LocalPostgres | None = None
    if args.books_db == "postgres":
        try:
            postgres = prepare_postgres(config.data_dir.resolve(), ports["postgres"])
        except PostgresUnavailable as error:
            print(f"{PROGRAM}: --books-db postgres: {error}", file=sys.stderr)
            print(f"{PROGRAM}: nothing started", file=sys.stderr)
            return 1
        config = dataclasses.replace(config, books_database_url=postgres.url(POSTGRES_DATABASE))
    run_id = str(os.getpid())
    # The gateway's admin socket: a private directory (a socket path must be short).
    admin_dir = Path(tempfile.mkdtemp(prefix="stack-gateway-"))
    admin_socket = admin_dir / "admin.sock"
    config = dataclasses.replace(config, gateway_admin_socket=admin_socket)
    state = StackState(
        state_path(config.data_dir.resolve()),
        {
            "gateway_admin_socket": str(config.gateway_admin_socket),
            "gateway_url": config.gateway_url,
            "agent_url": config.agent_url,
        },
    )
    remove_leftover_admin_dir(config.data_dir.resolve())
    try:
        specs = build_specs(config)
        if postgres is not None:
            specs.insert(0, postgres_spec(postgres))
        sources: SourceMap | None = None
        if args.images:
            # The services run from their images: nothing to reload from sources.
            missing = images.missing_images(specs)
            if missing:
                for problem in missing:
                    print(f"{PROGRAM}: {problem}", file=sys.stderr)
                print(f"{PROGRAM}: nothing started", file=sys.stderr)
                return 1
            images.prepare_data_dir(config.data_dir)
            specs = images.containerized(specs, config.data_dir, run_id)
        else:
            root = find_workspace_root(Path.cwd())
            sources = SourceMap.for_specs(load_workspace(root), specs) if root else None
            if sources is not None:
                specs = run_from_sources(specs, sources)
        output = Output([spec.name for spec in specs])
        stack = Stack(
            specs,
            cwd=Path.cwd(),
            ready_timeout_s=args.ready_timeout,
            on_ready=lambda seconds: banner(config, seconds, output, sources),
            output=output,
            reloader=(
                Reloader(sources, istio_dir=config.istio_dir)
                if sources is not None and config.reload
                else None
            ),
            gateway=GatewayLink(admin_socket),
            state=state,
            prepare=create_books_database(postgres) if postgres is not None else None,
        )
        return asyncio.run(stack.run())
    finally:
        if args.images:
            images.remove_containers(run_id)
        shutil.rmtree(admin_dir, ignore_errors=True)


def remove_leftover_admin_dir(data_dir: Path) -> None:
    """The admin socket directory of an earlier stack that was killed (its runner is gone)."""
    document = read_state(data_dir)
    if document is None or runner_alive(document):
        return
    socket = Path(str(document.get("gateway_admin_socket") or ""))
    if socket.name == "admin.sock" and socket.parent.name.startswith("stack-gateway-"):
        shutil.rmtree(socket.parent, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "up":
        raise SystemExit(up(args))
    if args.command == "status":
        raise SystemExit(show_status(args))


if __name__ == "__main__":
    main()
