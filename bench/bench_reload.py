"""How fast `stack up` follows an edit (its live reload), and the images' live_update reload.

    uv run python bench/bench_reload.py [--rounds 5] [--container]

Copies the workspace to a temporary directory, starts the stack there (on
free ports, the services running the copy's sources), then per round:

- ``edit_to_answer_s``: a save of services/tts_v1/src/tts_v1/app.py with a new
  banner, until GET / pinned to v1 (``x-canary: v1``) through the gateway
  answers the new banner; ``edit_to_answer_direct_s``: until v1's own port
  does (the reload alone, without the gateway's part);
- ``servicekit_edit_to_answer_s``: a save of libs/servicekit/src/servicekit/http/errors.py
  (the 404 text every HTTP service answers), which reloads every service, until
  books (GET /books/1/x), v1 and v2 (GET /speech/x, pinned) all answer the new
  text through the gateway; ``servicekit_edit_to_answer_direct_s``: on their own ports;
- ``weights_to_traffic_s``: a save of k8s/istio/virtualservices.yaml moving the
  whole unpinned split to the other version (100/0 <-> 0/100), until a request
  sent after the save is answered by it (requests keep going from 4 workers):
  the time the gateway takes to serve new routes to new requests.

``--container`` adds the images' reload: the speech-mesh/tts-v1 image (build it
first, as tests/test_containers.py does) runs as its pod runs under Tilt (uid
10001, capabilities dropped, no privilege escalation, /tmp a tmpfs; the root
filesystem writable, as the Tiltfile makes it for live_update) with an APM test
agent; per round the edited app.py is copied in with ``docker cp`` and the
Tiltfile's live_update step runs (``docker exec ... sh -c 'kill -HUP 1'``):
``container_edit_to_answer_s`` from the copy to the first GET / with the new
banner (``container_reload_to_answer_s``: from the live_update step's start;
``container_exec_s``: a ``docker exec ... sh -c true``, the docker client's own share);
``container_start_to_answer_s``: ``docker run`` to the first answer
(what every reload cost with a restart of the process).

``--cold`` runs the local rounds again with ``STACK_WARM_RELOAD=false`` (each
reload a restart of the process, as before the warm parent), side by side:
the same names prefixed ``cold_``.

Prints one line per figure (``name value``): medians over the rounds, the 90th
percentile (``..._p90``) and the slowest round (``..._max``), and the machine's
1-minute load average when the run ended (``load_average``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
from devstack.services import Ports
from servicekit.scripts import console_script
from testkit.devstack import copy_workspace, free_stack_ports, wait_for_output
from testkit.process import REPO_ROOT, ServiceProcess, free_port

V1_APP = Path("services/tts_v1/src/tts_v1/app.py")
ERRORS = Path("libs/servicekit/src/servicekit/http/errors.py")
NOT_FOUND = "no route or resource at"
VIRTUAL_SERVICES = Path("k8s/istio/virtualservices.yaml")
DEADLINE_S = 120.0


def save(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.swp")
    temporary.write_text(text)
    os.replace(temporary, path)


def until(check: Callable[[], bool], started: float) -> float:
    while not check():
        if time.monotonic() - started > DEADLINE_S:
            raise TimeoutError("no change after the save")
        time.sleep(0.01)
    return time.monotonic() - started


def text(url: str, headers: dict[str, str] | None = None) -> str:
    try:
        return httpx.get(url, headers=headers, timeout=10).text
    except httpx.HTTPError:
        return ""


def banner(url: str) -> str:
    return text(f"{url}/", {"x-canary": "v1"})


def _shows(marker: str, url: str) -> bool:
    """Does v1's page behind ``url`` show ``marker``?"""
    return marker in banner(url)


def _answers(marker: str, url: str) -> bool:
    """Does ``url`` answer with ``marker`` in its body?"""
    return marker in text(url)


def weights(text: str, v1: int, v2: int) -> str:
    """The unpinned split of every text-to-speech route at v1/v2."""
    for subset, weight in (("v1", v1), ("v2", v2)):
        pattern = rf"(subset: {subset}\n(?:\s+port:\n\s+number: \d+\n)?\s+weight: )\d+"
        text = re.sub(pattern, rf"\g<1>{weight}", text)
    return text


def both(
    gateway: Callable[[], bool], direct: Callable[[], bool], started: float
) -> tuple[float, float]:
    """Seconds from ``started`` until each check passes (polled in turn)."""
    times: dict[str, float] = {}
    while len(times) < 2:
        for name, check in (("gateway", gateway), ("direct", direct)):
            if name not in times and check():
                times[name] = time.monotonic() - started
        if time.monotonic() - started > DEADLINE_S:
            raise TimeoutError("no change after the save")
        time.sleep(0.01)
    return times["gateway"], times["direct"]


def print_figures(name: str, values: list[float]) -> None:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    print(f"{name} {statistics.median(values):.3f}", flush=True)
    print(f"{name}_p90 {p90:.3f}", flush=True)
    print(f"{name}_max {max(values):.3f}", flush=True)


def edit_rounds(root: Path, ports: Ports, rounds: int) -> dict[str, list[float]]:
    url = ports.gateway_url
    v1_direct = f"http://127.0.0.1:{ports.tts_v1}"
    figures: dict[str, list[float]] = {}
    original_app = (root / V1_APP).read_text()
    for n in range(rounds):
        marker = f"(stable, round {n})"
        started = time.monotonic()
        save(root / V1_APP, original_app.replace("(stable)", marker))
        via, direct = both(
            functools.partial(_shows, marker, url),
            functools.partial(_shows, marker, v1_direct),
            started,
        )
        figures.setdefault("edit_to_answer_s", []).append(via)
        figures.setdefault("edit_to_answer_direct_s", []).append(direct)
    save(root / V1_APP, original_app)
    until(lambda: "(stable)" in banner(url), time.monotonic())

    original_errors = (root / ERRORS).read_text()
    assert original_errors.count(NOT_FOUND) == 1
    pinned = [{"x-canary": "v1"}, {"x-canary": "v2"}]
    direct_urls = [
        f"http://127.0.0.1:{ports.books}/books/1/x",
        f"http://127.0.0.1:{ports.tts_v1}/speech/x",
        f"http://127.0.0.1:{ports.tts_v2}/speech/x",
    ]
    for n in range(rounds):
        marker = f"no route (round {n}) or resource at"

        def via_gateway(m: str = marker) -> bool:
            answers = [text(f"{url}/books/1/x"), *(text(f"{url}/speech/x", h) for h in pinned)]
            return all(m in a for a in answers)

        def on_their_ports(m: str = marker) -> bool:
            return all(m in text(u) for u in direct_urls)

        started = time.monotonic()
        save(root / ERRORS, original_errors.replace(NOT_FOUND, marker))
        via, direct = both(via_gateway, on_their_ports, started)
        figures.setdefault("servicekit_edit_to_answer_s", []).append(via)
        figures.setdefault("servicekit_edit_to_answer_direct_s", []).append(direct)
    save(root / ERRORS, original_errors)
    until(lambda: NOT_FOUND in text(f"{url}/books/1/x"), time.monotonic())
    return figures


def weight_rounds(root: Path, url: str, rounds: int) -> list[float]:
    original_vs = (root / VIRTUAL_SERVICES).read_text()
    assert weights(original_vs, 70, 30) == original_vs
    assert weights(original_vs, 0, 100).count("weight: 100") == 2
    answers: list[tuple[float, str]] = []
    running = True

    def poll() -> None:
        with httpx.Client(timeout=10) as client:
            while running:
                sent = time.monotonic()
                try:
                    response = client.get(f"{url}/")
                except httpx.HTTPError:
                    continue
                answers.append((sent, response.headers.get("x-tts-version", "?")))

    workers = [threading.Thread(target=poll) for _ in range(4)]
    for worker in workers:
        worker.start()
    weights_s: list[float] = []
    try:
        for n in range(rounds * 2):
            target = "v2" if n % 2 == 0 else "v1"
            split = (0, 100) if target == "v2" else (100, 0)
            started = time.monotonic()
            save(root / VIRTUAL_SERVICES, weights(original_vs, *split))

            def switched(t: str = target, s: float = started) -> bool:
                return any(sent > s and v == t for sent, v in list(answers))

            weights_s.append(until(switched, started))
    finally:
        running = False
        for worker in workers:
            worker.join()
        save(root / VIRTUAL_SERVICES, original_vs)
    return weights_s


def local(rounds: int, *, cold: bool = False) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="bench-reload-") as tmp:
        # k8s/istio as it is: a service the stack restarts is out of the pick, not ejected.
        root = copy_workspace(REPO_ROOT, Path(tmp) / "repo")
        ports = free_stack_ports()
        command = [console_script("stack"), "up", *ports.flags(), f"--data-dir={Path(tmp) / 'd'}"]
        env = {"STACK_WARM_RELOAD": "false"} if cold else {}
        with ServiceProcess(command, env, name="stack", cwd=root) as stack:
            wait_for_output(stack, r"Ctrl-C stops everything", timeout=DEADLINE_S)
            figures = edit_rounds(root, ports, rounds)
            figures["weights_to_traffic_s"] = weight_rounds(root, ports.gateway_url, rounds)
    return figures


@contextlib.contextmanager
def tilt_container(port: int, volumes: Path) -> Iterator[str]:
    """speech-mesh/tts-v1 as its pod runs under Tilt, with an APM test agent; its name."""
    from repocheck.k8s.manifests import K8S_DIR
    from testkit.containers import ContainerRun, pod_containers
    from testkit.k8s import repo_rendered
    from testkit.testagent import ApmTestAgent

    pod = pod_containers(repo_rendered()[REPO_ROOT / K8S_DIR])["text-to-speech-v1"]
    # The Tiltfile's allow_live_update: live_update writes into the container.
    pod.container.setdefault("securityContext", {})["readOnlyRootFilesystem"] = False
    with (
        ApmTestAgent() as agent,
        ContainerRun(pod, volume_dir=volumes, port=port, env=agent.tracer_env()) as run,
    ):
        yield run.name


def container(rounds: int) -> dict[str, list[float]]:
    docker = "/usr/bin/docker"
    original = (REPO_ROOT / V1_APP).read_text()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    figures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-reload-container-") as tmp:
        started = time.monotonic()
        with tilt_container(port, Path(tmp) / "volumes") as name:
            figures["container_start_to_answer_s"] = [
                until(lambda: "(stable)" in text(f"{url}/"), started)
            ]
            edited = Path(tmp) / "app.py"
            for n in range(rounds):
                # What the docker client alone costs to run a command in the container.
                exec_started = time.monotonic()
                subprocess.run([docker, "exec", name, "sh", "-c", "true"], check=True, timeout=60)
                figures.setdefault("container_exec_s", []).append(time.monotonic() - exec_started)
                marker = f"(stable, round {n})"
                edited.write_text(original.replace("(stable)", marker))
                os.chmod(edited, 0o644)
                started = time.monotonic()
                subprocess.run(
                    [docker, "cp", str(edited), f"{name}:/app/{V1_APP}"], check=True, timeout=60
                )
                reloaded = time.monotonic()
                subprocess.run(
                    [docker, "exec", name, "sh", "-c", "kill -HUP 1"], check=True, timeout=60
                )
                seconds = until(functools.partial(_answers, marker, f"{url}/"), started)
                figures.setdefault("container_edit_to_answer_s", []).append(seconds)
                figures.setdefault("container_reload_to_answer_s", []).append(
                    seconds - (reloaded - started)
                )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--container", action="store_true", help="also the tts-v1 image's live_update reload"
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="also the same rounds with every reload a restart (STACK_WARM_RELOAD=false)",
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    figures = local(args.rounds)
    if args.cold:
        cold = local(args.rounds, cold=True)
        figures.update({f"cold_{name}": values for name, values in cold.items()})
    if args.container:
        figures.update(container(args.rounds))
    for name, values in figures.items():
        print_figures(name, values)
    print(f"load_average {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
