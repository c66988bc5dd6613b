"""repomodel.workspace: the workspace root above a directory, and the members it declares."""

from __future__ import annotations

from pathlib import Path

from repomodel.workspace import find_workspace_root, load_workspace


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
    assert (root / "tools" / "repomodel" / "tests" / Path(__file__).name).is_file()


def test_members_their_dependencies_and_scripts_come_from_the_metadata(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.uv.workspace]\nmembers = ["libs/*", "services/*"]\nexclude = ["libs/old"]\n'
    )
    for folder, text in {
        "libs/kit": '[project]\nname = "Kit_Lib"\ndependencies = ["msgspec>=0.18"]\n',
        "libs/old": '[project]\nname = "old"\n',
        "libs/notes": "",  # no pyproject.toml: not a member
        "services/api": '[project]\nname = "api"\ndependencies = ["kit-lib[http]>=0.1"]\n'
        '[project.scripts]\napi = "api.main:main"\n',
    }.items():
        (tmp_path / folder / "src").mkdir(parents=True)
        if text:
            (tmp_path / folder / "pyproject.toml").write_text(text)
    workspace = load_workspace(tmp_path)
    assert sorted(workspace.members) == ["api", "kit-lib"]
    assert workspace.members["kit-lib"].folder == "libs/kit"
    api = workspace.members["api"]
    assert workspace.member_for_script("api") == api
    assert [m.name for m in workspace.closure(api)] == ["api", "kit-lib"]
    assert workspace.source_dirs(api) == [
        (tmp_path / "services/api/src").resolve(),
        (tmp_path / "libs/kit/src").resolve(),
    ]
