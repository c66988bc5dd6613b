"""Live reload in the supervisor, on a small made-up workspace with real processes.

The workspace has two members, `app` (a stdlib HTTP server whose answer is a
constant in its source) and `shared` (imported by `app`), plus `other` (a
second service that must never be disturbed). The real Stack, Reloader and
file watcher run in the test's event loop; the services are real processes
started from console scripts named like the members' `[project.scripts]`.
Also: what the repository's own metadata maps each stack service to.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from devstack.cli import build_parser, config_from_args
from devstack.reload import Reloader, SourceMap, run_from_sources
from devstack.services import Ports, Probe, ServiceSpec, StackConfig, build_specs
from devstack.supervisor import Output, Stack
from repomodel.workspace import find_workspace_root, load_workspace
from testkit.devstack import save_file
from testkit.process import REPO_ROOT, free_port

DEADLINE_S = 60.0

SERVER = """\
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from shared.words import GREETING

ANSWER = "first"
EXIT_AFTER_READY = False


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{GREETING} {ANSWER}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if EXIT_AFTER_READY and self.path == "/readyz":
            os._exit(3)

    def log_message(self, *args):
        pass


def main():
    print("serving", flush=True)
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


def _pyproject(name: str, dependencies: list[str], script: str | None = None) -> str:
    text = f'[project]\nname = "{name}"\nversion = "0"\ndependencies = {dependencies!r}\n'
    if script:
        text += f'\n[project.scripts]\n{name} = "{script}"\n'
    return text.replace("'", '"')


def make_workspace(root: Path) -> Path:
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "root"\nversion = "0"\n\n'
        '[tool.uv.workspace]\nmembers = ["members/*"]\nexclude = ["members/ignored"]\n'
    )
    (root / "uv.lock").write_text("version = 1\n")
    members = {
        "app": (["shared", "httpx>=0.27"], "app.main:main", {"main.py": SERVER}),
        "shared": ([], None, {"words.py": 'GREETING = "hello"\n'}),
        "other": ([], "other.main:main", {"main.py": SERVER.replace("shared.words", "words")}),
        "ignored": (["app"], "ignored.main:main", {}),
    }
    for name, (dependencies, script, files) in members.items():
        member = root / "members" / name
        package = member / "src" / name
        package.mkdir(parents=True)
        (member / "pyproject.toml").write_text(_pyproject(name, dependencies, script))
        (package / "__init__.py").write_text("")
        for filename, text in files.items():
            (package / filename).write_text(text)
    (root / "members" / "other" / "src" / "words.py").write_text('GREETING = "other"\n')
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for name in ("app", "other"):
        script = bin_dir / name
        script.write_text(f"#!{sys.executable}\nfrom {name}.main import main\nmain()\n")
        script.chmod(0o755)
    return root


@dataclass
class Running:
    root: Path
    stack: Stack
    stream: io.StringIO
    ports: dict[str, int]
    task: asyncio.Task[int]

    def output(self) -> str:
        return self.stream.getvalue()

    def save(self, relative: str, text: str) -> None:
        save_file(self.root / relative, text)

    async def wait(self, check: Callable[[], bool], what: str) -> None:
        started = time.monotonic()
        while not check():
            assert not self.task.done(), self.output()
            assert time.monotonic() - started < DEADLINE_S, f"no {what}:\n{self.output()}"
            await asyncio.sleep(0.05)

    async def wait_line(self, pattern: str, since: int) -> None:
        regex = re.compile(pattern, re.MULTILINE)
        await self.wait(lambda: bool(regex.search(self.output(), since)), pattern)

    def pids(self, name: str) -> list[str]:
        return re.findall(rf"started {name} \(pid (\d+)\)", self.output())


async def answer(port: int) -> str:
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            response = await client.get(f"http://127.0.0.1:{port}/")
    except httpx.HTTPError:
        return ""
    return response.text


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    root = make_workspace(tmp_path / "ws")
    ports = {"app": free_port(), "other": free_port()}
    specs = [
        ServiceSpec(
            name,
            [str(root / "bin" / name)],
            {"PORT": str(port), "PYTHONDONTWRITEBYTECODE": "1"},
            Probe("http", f"http://127.0.0.1:{port}/readyz"),
        )
        for name, port in ports.items()
    ]
    sources = SourceMap.for_specs(load_workspace(root), specs)
    stream = io.StringIO()
    stack = Stack(
        run_from_sources(specs, sources),
        cwd=root,
        ready_timeout_s=DEADLINE_S,
        on_ready=lambda seconds: stack.output.stack("ready"),
        output=Output(list(ports), stream),
        reloader=Reloader(sources),
    )
    task = asyncio.create_task(stack.run())
    result = Running(root, stack, stream, ports, task)
    try:
        await result.wait(lambda: "stack | ready" in stream.getvalue(), "ready")
        yield result
    finally:
        stack.stopping.set()
        assert await asyncio.wait_for(task, DEADLINE_S) == 0, stream.getvalue()


APP = "members/app/src/app/main.py"


async def test_an_edit_restarts_only_the_service_importing_it(running: Running) -> None:
    assert await answer(running.ports["app"]) == "hello first"
    other_pids = running.pids("other")
    mark = len(running.output())
    running.save(APP, SERVER.replace('"first"', '"second"'))
    await running.wait_line(rf"^stack +\| {APP} changed: restarting app$", mark)
    await running.wait_line(r"^stack +\| app is ready again$", mark)
    assert await answer(running.ports["app"]) == "hello second"
    # A shared member is imported by `app` only.
    mark = len(running.output())
    running.save("members/shared/src/shared/words.py", 'GREETING = "bonjour"\n')
    await running.wait_line(r"shared/words.py changed: restarting app$", mark)
    await running.wait_line(r"^stack +\| app is ready again$", mark)
    assert await answer(running.ports["app"]) == "bonjour second"
    assert running.pids("other") == other_pids
    assert await answer(running.ports["other"]) == "other first"


async def test_a_broken_edit_waits_for_the_next_save_and_the_others_keep_running(
    running: Running,
) -> None:
    mark = len(running.output())
    running.save(APP, SERVER + "\nraise SystemExit('cannot start: ' + ANSWER)\n")
    await running.wait_line(r"^stack +\| app exited \(exit status 1\) after the edit; ", mark)
    await running.wait_line(r"^stack +\|   app \| cannot start: first$", mark)
    assert await answer(running.ports["app"]) == ""
    assert await answer(running.ports["other"]) == "other first"
    mark = len(running.output())
    running.save(APP, SERVER.replace('"first"', '"fixed"'))
    await running.wait_line(r"^stack +\| app is ready again$", mark)
    assert await answer(running.ports["app"]) == "hello fixed"
    assert not running.task.done()


async def test_a_crash_loop_after_an_edit_does_not_stop_the_stack(running: Running) -> None:
    """Ready, then dead, 5 times within a minute: without an edit that stops the
    stack; after an edit the service waits for the next save instead."""
    mark = len(running.output())
    running.save(APP, SERVER.replace("EXIT_AFTER_READY = False", "EXIT_AFTER_READY = True"))
    await running.wait_line(
        r"^stack +\| app exited \(exit status 3\), 5 times within a minute; ", mark
    )
    assert "stopping the stack" not in running.output()
    assert await answer(running.ports["other"]) == "other first"
    mark = len(running.output())
    running.save(APP, SERVER)
    await running.wait_line(r"^stack +\| app is ready again$", mark)
    assert await answer(running.ports["app"]) == "hello first"


async def test_a_lock_or_pyproject_change_is_reported_once(running: Running) -> None:
    mark = len(running.output())
    running.save("uv.lock", "version = 1\n# changed\n")
    await running.wait_line(
        r"^stack +\| uv.lock changed: dependencies are not live-reloaded; "
        r"restart the stack",
        mark,
    )
    running.save("members/app/pyproject.toml", _pyproject("app", ["shared"], "app.main:main"))
    # An edit seen after it shows the watcher has had its chance to report the second one.
    running.save(APP, SERVER.replace('"first"', '"later"'))
    await running.wait_line(r"^stack +\| app is ready again$", mark)
    assert running.output().count("restart the stack") == 1


def test_the_repository_metadata_maps_each_service_to_its_sources() -> None:
    root = find_workspace_root(REPO_ROOT / "tools" / "devstack" / "tests")
    assert root == REPO_ROOT.resolve()
    workspace = load_workspace(root)
    specs = build_specs(StackConfig(Ports(), Path("data"), Path("k8s/istio"), with_client=True))
    sources = SourceMap.for_specs(workspace, specs)
    relative = {
        name: {str(d.relative_to(root)) for d in dirs} for name, dirs in sources.services.items()
    }
    kit = "libs/servicekit/src"
    wav = "libs/pcm_wav/src"
    front = {kit, wav, "libs/speech_front/src", "protos/src"}
    assert relative == {
        "books": {"services/books/src", kit},
        "tts-backend": {"services/tts_backend/src", kit, wav, "protos/src"},
        "tts-v1": {"services/tts_v1/src", *front},
        "tts-v2": {"services/tts_v2/src", *front},
        "local-gateway": {"tools/devstack/src", "tools/repomodel/src", kit},
        "client": {"services/client/src", kit},
    }  # the APM test agent is not a workspace script: not watched
    plan = sources.plan(
        [root / "services/tts_v1/src/tts_v1/app.py", root / "services/tts_v1/src/tts_v1/x.py"]
    )
    assert plan == {
        "tts-v1": ["services/tts_v1/src/tts_v1/app.py", "services/tts_v1/src/tts_v1/x.py"]
    }
    assert set(sources.plan([root / "libs/servicekit/src/servicekit/logs.py"])) == set(relative)


def test_services_import_the_workspace_sources_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_workspace(tmp_path / "ws")
    workspace = load_workspace(root)
    assert sorted(workspace.members) == ["app", "other", "shared"]  # `ignored` is excluded
    specs = [
        ServiceSpec("app", [str(root / "bin" / "app")], {"PORT": "1"}, None),
        ServiceSpec("agent", ["/usr/bin/true"], {}, None),
    ]
    monkeypatch.setenv("PYTHONPATH", "/inherited")
    app, agent = run_from_sources(specs, SourceMap.for_specs(workspace, specs))
    assert app.env["PYTHONPATH"].split(os.pathsep) == [
        str(root / "members" / "app" / "src"),
        str(root / "members" / "shared" / "src"),
        "/inherited",
    ]
    assert app.env["PORT"] == "1"
    assert agent == specs[1]


def test_no_reload_turns_off_the_gateway_s_watch_too() -> None:
    for argv, expected in ((["up"], "true"), (["up", "--no-reload"], "false")):
        config = config_from_args(build_parser().parse_args(argv))
        assert config.reload is (expected == "true")
        [gateway] = [spec for spec in build_specs(config) if spec.name == "local-gateway"]
        assert gateway.env["GATEWAY_RELOAD"] == expected


async def test_sources_that_cannot_be_watched_are_one_line_and_the_stack_goes_on(
    tmp_path: Path,
) -> None:
    root = make_workspace(tmp_path / "ws")
    specs = [ServiceSpec("app", [str(root / "bin" / "app")], {"PORT": "1"}, None)]
    sources = SourceMap.for_specs(load_workspace(root), specs)
    shutil.rmtree(root / "members" / "shared" / "src")  # a watched directory is gone
    stream = io.StringIO()
    stack = SimpleNamespace(output=Output([], stream), stopping=asyncio.Event())
    await asyncio.wait_for(Reloader(sources).watch_sources(stack), DEADLINE_S)  # type: ignore[arg-type]
    [line] = stream.getvalue().splitlines()
    assert re.fullmatch(r"stack +\| cannot watch the sources \(.+\); live reload is off", line)
