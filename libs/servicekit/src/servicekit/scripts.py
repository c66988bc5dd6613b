"""Where a workspace console script lives: next to the running interpreter.

The one lookup for everything that starts a service by its script name: the
local stack (``devstack``) and the test and bench harness (``testkit``).
"""

from __future__ import annotations

import sys
from pathlib import Path


def console_script(name: str) -> str:
    """The workspace's console script next to the running interpreter (the uv venv).

    Falls back to the bare name (looked up on ``PATH``) when the venv has no such script.
    """
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name
