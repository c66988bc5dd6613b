"""Test helpers beside the tests (traffic.py, fake_datadog.py) import by name."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from testkit.testagent import ApmTestAgent

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="module")
def agent() -> Iterator[ApmTestAgent]:
    with ApmTestAgent() as running:
        yield running


@pytest.fixture
def empty_agent(agent: ApmTestAgent) -> ApmTestAgent:
    httpx.get(f"{agent.url}/test/session/clear", timeout=5.0).raise_for_status()
    return agent
