"""Test helpers beside the tests (traffic.py, fake_datadog.py) import by name."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
