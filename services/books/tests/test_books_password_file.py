"""The PostgreSQL password from a file (BOOKS_DATABASE_PASSWORD_FILE) or the environment.

In Kubernetes the Secret is mounted as a file, so the password is in no
environment (``/proc/<pid>/environ``, ``kubectl describe``); locally the
variable stays. Both at once is refused with one line naming both.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from books.settings import load_settings
from servicekit.settings import Env, SettingsError
from testkit.process import console_script

URL = "postgresql://books@127.0.0.1:5432/books"
SECRET = "s3cret-Pa55"


def test_the_password_comes_from_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(SECRET + "\n")  # as `echo ... > file` writes it
    settings = load_settings(
        Env({"BOOKS_DATABASE_URL": URL, "BOOKS_DATABASE_PASSWORD_FILE": str(secret)})
    )
    assert settings.postgres_password == SECRET


def test_the_environment_form_stays_for_local_use() -> None:
    settings = load_settings(Env({"BOOKS_DATABASE_URL": URL, "BOOKS_DATABASE_PASSWORD": SECRET}))
    assert settings.postgres_password == SECRET
    assert load_settings(Env({"BOOKS_DATABASE_URL": URL})).postgres_password is None


@pytest.mark.parametrize("content", [b"", b"\n", b"\xff\xfe not UTF-8", b"x" * 5000])
def test_an_unusable_file_is_a_bad_setting(tmp_path: Path, content: bytes) -> None:
    secret = tmp_path / "password"
    secret.write_bytes(content)
    with pytest.raises(SettingsError) as raised:
        load_settings(Env({"BOOKS_DATABASE_URL": URL, "BOOKS_DATABASE_PASSWORD_FILE": str(secret)}))
    assert raised.value.name == "BOOKS_DATABASE_PASSWORD_FILE"


def run_books(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("BOOKS_DATABASE_PASSWORD")
    }
    environ |= {"BOOKS_DATABASE_URL": URL, "PORT": "1", **env}
    return subprocess.run(
        [console_script("books")], env=environ, capture_output=True, text=True, timeout=30
    )


def test_both_forms_at_once_exit_2_with_one_line_naming_both(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(SECRET)
    result = run_books(
        {"BOOKS_DATABASE_PASSWORD": SECRET, "BOOKS_DATABASE_PASSWORD_FILE": str(secret)},
        tmp_path,
    )
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "BOOKS_DATABASE_PASSWORD_FILE" in lines[0]
    assert "BOOKS_DATABASE_PASSWORD is set" in lines[0]
    assert SECRET not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_a_file_books_cannot_read_exits_2_naming_it(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "password"
    if kind == "directory":
        path.mkdir()
    result = run_books({"BOOKS_DATABASE_PASSWORD_FILE": str(path)}, tmp_path)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "BOOKS_DATABASE_PASSWORD_FILE" in lines[0] and str(path) in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
