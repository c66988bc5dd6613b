"""How fast `stack up` follows an edit (its live reload).

    uv run python bench/bench_reload.py [--rounds 3]

Copies the workspace to a temporary directory, starts the stack there (on
free ports, the services running the copy's sources), then per round:

- ``edit_to_answer_s``: a save of services/tts_v1/src/tts_v1/app.py with a new
  banner, until GET / pinned to v1 (``x-canary: v1``) through the gateway
  answers the new banner (tts-v1 stopped, started again and ready);
- ``weights_to_traffic_s``: a save of k8s/istio/virtualservices.yaml moving the
  whole unpinned split to the other version (100/0 <-> 0/100), until a request
  sent after the save is answered by it (requests keep going from 4 workers):
  the time the gateway takes to serve new routes to new requests.

Prints one line per figure (``name value``), medians over the rounds, and the
slowest round (``..._max``).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from testkit.devstack import copy_workspace, free_stack_ports, wait_for_output
from testkit.process import REPO_ROOT, ServiceProcess, console_script

V1_APP = Path("services/tts_v1/src/tts_v1/app.py")
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


def banner(url: str) -> str:
    try:
        return httpx.get(f"{url}/", headers={"x-canary": "v1"}, timeout=10).text
    except httpx.HTTPError:
        return ""


def weights(text: str, v1: int, v2: int) -> str:
    """The unpinned split of every text-to-speech route at v1/v2."""
    for subset, weight in (("v1", v1), ("v2", v2)):
        pattern = rf"(subset: {subset}\n(?:\s+port:\n\s+number: \d+\n)?\s+weight: )\d+"
        text = re.sub(pattern, rf"\g<1>{weight}", text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reload-") as tmp:
        root = copy_workspace(REPO_ROOT, Path(tmp) / "repo")
        rules = root / "k8s" / "istio" / "destinationrules.yaml"
        rules.write_text(rules.read_text().replace("baseEjectionTime: 30s", "baseEjectionTime: 1s"))
        ports = free_stack_ports()
        command = [console_script("stack"), "up", *ports.flags(), f"--data-dir={Path(tmp) / 'd'}"]
        url = ports.gateway_url
        with ServiceProcess(command, name="stack", cwd=root) as stack:
            wait_for_output(stack, r"Ctrl-C stops everything", timeout=DEADLINE_S)
            original_app = (root / V1_APP).read_text()
            original_vs = (root / VIRTUAL_SERVICES).read_text()
            assert weights(original_vs, 70, 30) == original_vs
            assert weights(original_vs, 0, 100).count("weight: 100") == 2
            edit_s: list[float] = []
            for n in range(args.rounds):
                marker = f"(stable, round {n})"
                started = time.monotonic()
                save(root / V1_APP, original_app.replace("(stable)", marker))
                edit_s.append(until(lambda m=marker: m in banner(url), started))
            save(root / V1_APP, original_app)
            until(lambda: "(stable)" in banner(url), time.monotonic())

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
                for n in range(args.rounds * 2):
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
            for name, values in (("edit_to_answer_s", edit_s), ("weights_to_traffic_s", weights_s)):
                print(f"{name} {statistics.median(values):.3f}", flush=True)
                print(f"{name}_max {max(values):.3f}", flush=True)


if __name__ == "__main__":
    main()
