"""servicekit.scripts: the console-script and workspace-root lookups the tools share."""

from __future__ import annotations

import sys
from pathlib import Path

from servicekit.scripts import console_script, find_workspace_root


def test_a_script_of_the_venv_is_its_full_path() -> None:
    # `stack` is devstack's console script, installed in this venv by `uv sync`.
    found = console_script("stack")
    assert Path(found) == Path(sys.executable).parent / "stack"
    assert Path(found).is_file()


def test_a_script_the_venv_lacks_is_left_to_path() -> None:
    assert console_script("no-such-script-in-this-venv") == "no-such-script-in-this-venv"


def test_the_workspace_root_is_the_nearest_pyproject_declaring_a_uv_workspace(
    tmp_path: Path,
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.uv.workspace]\nmembers = ["tools/*"]\n')
    member = tmp_path / "tools" / "x"
    (member / "src" / "x").mkdir(parents=True)
    # A member's own pyproject (no workspace table) is passed over.
    (member / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.uv.sources]\n')
    assert find_workspace_root(member / "src" / "x") == tmp_path.resolve()
    assert find_workspace_root(tmp_path) == tmp_path.resolve()


def test_no_workspace_above_is_none(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("not = [valid toml\n")
    assert find_workspace_root(tmp_path) is None


def test_this_checkout_is_found_from_this_file() -> None:
    root = find_workspace_root(Path(__file__).parent)
    assert root is not None
    assert (root / "libs" / "servicekit" / "tests" / Path(__file__).name).is_file()
