"""Each Tiltfile check fails on the mistake it exists for."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from repocheck import tilt
from repocheck.__main__ import main

ROOT = tilt.REPO_ROOT
TILTFILE = (ROOT / "Tiltfile").read_text()


def _problems_with(source: str) -> list[str]:
    result = tilt.evaluate_tiltfile(ROOT, source=source)
    return tilt.check_tiltfile(ROOT, result)


def _edit(old: str, new: str) -> str:
    assert TILTFILE.count(old) >= 1, f"the Tiltfile no longer contains {old!r}"
    return TILTFILE.replace(old, new, 1)


# One edit of today's Tiltfile, (old text, new text), and a fragment of the problem it raises.
EDITS = [
    # misspelled keyword of a builtin
    pytest.param(
        "labels=['data']",
        "label=['data']",
        "k8s_resource(): unknown keyword 'label'",
        id="misspelled-keyword",
    ),
    # misspelled keyword that the restart extension would pass to docker_build
    pytest.param(
        "only=DEPENDENCY_FILES",
        "olny=DEPENDENCY_FILES",
        "unknown keyword 'olny'",
        id="misspelled-forwarded-keyword",
    ),
    # the name the docs show, which Tilt rejects
    pytest.param(
        "fall_back_on(DEPENDENCY_FILES)",
        "fall_back_on(files=DEPENDENCY_FILES)",
        "keyword 'files' is the name in Tilt's docs, but Tilt rejects it; use 'paths'",
        id="docs-keyword",
    ),
    # too many positional arguments
    pytest.param(
        "link('http://localhost/', 'gateway (kind port mapping)')",
        "link('http://localhost/', 'gateway', 'extra')",
        "link(): 3 positional arguments, Tilt accepts at most 2",
        id="too-many-positional",
    ),
    # missing required argument
    pytest.param(
        "[sync(src, '/app/' + src) for src in sources]",
        "[sync(src) for src in sources]",
        "sync(): missing required argument 'remote_path'",
        id="missing-argument",
    ),
    # a misspelled builtin stops the evaluation
    pytest.param("local_resource(", "local_resorce(", "local_resorce", id="misspelled-builtin"),
    pytest.param(
        "SHARED_SOURCES = ['libs/servicekit/src'",
        "SHARED_SOURCES = ['libs/servicekit/source'",
        "sync path 'libs/servicekit/source' does not exist",
        id="missing-live-update-path",
    ),
    pytest.param(
        "run(RELOAD),", "", "live_update without a restart", id="warm-image-without-reload"
    ),
    # The services' docker_build (the warm parent re-forks on `kill -HUP 1`): Tilt's own
    # rule; the client's docker_build_with_restart: the restart_process extension's.
    pytest.param(
        "fall_back_on(DEPENDENCY_FILES),",
        "fall_back_on(DEPENDENCY_FILES), restart_container(),",
        "docker_build(): live_update: restart container is only valid as the last step",
        id="restart-container",
    ),
    pytest.param(
        "'servicekit.prefork', '/app/.venv/bin/service-entrypoint']",
        "'servicekit.prefork']",
        "but the image's ENTRYPOINT is",
        id="entrypoint-other-than-the-images",
    ),
    pytest.param(
        "    'tts-v2': 'tts_v2',",
        "    'tts-v2': 'tts_v1',",
        "speech-mesh/tts-v2 builds with SERVICE='tts_v1', not 'tts_v2'",
        id="image-built-with-another-service",
    ),
    # Argument types: Tilt's UnpackArgs refuses these when the Tiltfile loads
    # (internal/tiltfile/*.go).
    # a string where Tilt unpacks an int
    pytest.param(
        "port_forward(18081, 8080,",
        "port_forward('18081', 8080,",
        "port_forward(): for parameter local_port: got string, want int",
        id="string-for-int",
    ),
    # an int where Tilt unpacks a string
    pytest.param(
        "link('http://localhost/', 'gateway (kind port mapping)')",
        "link('http://localhost/', 80)",
        "link(): for parameter name: got int, want string",
        id="int-for-string",
    ),
    # a string where Tilt wants a sequence of strings (SequenceToStringSlice)
    pytest.param(
        "resource_deps=['protos-codegen']",
        "resource_deps='protos-codegen'",
        'k8s_resource(): for parameter "resource_deps": got string, want starlark.Sequence',
        id="string-for-sequence",
    ),
    # a bool flag given as a string
    pytest.param(
        "config.define_bool('no-datadog',",
        "config.define_bool('no-datadog', args='no',",
        'config.define_bool(): for parameter "args": got string, want bool',
        id="string-for-bool",
    ),
    # a docker_build keyword forwarded by the restart extension, wrong type
    pytest.param(
        "restart_file=RESTART_FILE,",
        "restart_file=RESTART_FILE, pull='yes',",
        'docker_build(): for parameter "pull": got string, want bool',
        id="forwarded-keyword-type",
    ),
    pytest.param(
        "sync(src, '/app/' + src)",
        "sync(src, 10001)",
        "sync(): for parameter remote_path: got int, want string",
        id="int-for-remote-path",
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), EDITS)
def test_an_edit_tilt_refuses_is_reported(old: str, new: str, expected: str) -> None:
    problems = _problems_with(_edit(old, new))
    assert any(expected in p for p in problems), problems


def test_an_image_no_docker_build_produces_is_reported() -> None:
    ghost = """
k8s_yaml(blob('''
apiVersion: apps/v1
kind: Deployment
metadata: {name: ghost, namespace: apps}
spec:
  selector: {matchLabels: {app: ghost}}
  template:
    metadata: {labels: {app: ghost}}
    spec:
      containers: [{name: ghost, image: speech-mesh/ghost}]
'''))
"""
    problems = _problems_with(TILTFILE + ghost)
    assert any("'speech-mesh/ghost'" in p and "no docker_build" in p for p in problems), problems


def test_a_service_left_out_of_the_builds_is_reported() -> None:
    problems = _problems_with(_edit("    'client': 'client',\n", ""))
    assert any("no docker_build for speech-mesh/client" in p for p in problems), problems
    assert any("'speech-mesh/client:" in p and "no docker_build" in p for p in problems)


def test_a_k8s_resource_naming_no_workload_is_reported() -> None:
    problems = _problems_with(
        _edit("    'client',\n    labels=['client'],", "    'clients',\n    labels=['client'],")
    )
    assert any('k8s_resource specified unknown resource "clients"' in p for p in problems)
    assert any("workload 'client' has no k8s_resource" in p for p in problems), problems


def test_only_leaving_out_a_dockerfile_copy_source_is_reported() -> None:
    problems = _problems_with(
        _edit("only=DEPENDENCY_FILES + BUILD_SOURCES", "only=['uv.lock'] + BUILD_SOURCES")
    )
    assert any("which only= leaves out" in p and "pyproject.toml" in p for p in problems), problems


# --------------------------------------------------------------------------- argument types
# The types Tilt's UnpackArgs refuses are edits in EDITS above; these it accepts.


def test_right_types_pass_including_blobs_and_none_where_tilt_allows() -> None:
    extra = """
docker_build('speech-mesh/extra', '.', dockerfile=None, dockerfile_contents=blob('FROM scratch'),
             only=['pyproject.toml'], build_args={'A': 'b'}, pull=False, target='final')
local_resource('x', cmd=['true'], deps='protos/tts', labels='codegen', env={'K': 'v'})
"""
    problems = _problems_with(TILTFILE + extra)
    assert problems == [], problems


# --------------------------------------------------------------------------- image refs


def test_a_second_build_of_the_same_ref_is_reported() -> None:
    again = "\ndocker_build('speech-mesh/books', '.', dockerfile='services/Dockerfile')\n"
    problems = _problems_with(TILTFILE + again)
    assert any(
        'docker_build(): Image for ref "speech-mesh/books" has already been defined' in p
        for p in problems
    ), problems


def test_a_build_of_the_ref_the_restart_extension_derives_is_reported() -> None:
    base = "speech-mesh/client-tilt_docker_build_with_restart_base"
    again = f"\ndocker_build('{base}', '.', dockerfile='services/Dockerfile')\n"
    problems = _problems_with(TILTFILE + again)
    assert any(f'Image for ref "{base}" has already been defined' in p for p in problems), problems


def test_docker_hub_spellings_of_one_ref_are_one_image() -> None:
    source = (
        TILTFILE
        + "\ndocker_build('docker.io/speech-mesh/client', '.', dockerfile='services/Dockerfile')\n"
    )
    problems = _problems_with(source)
    # build_index.go names the ref in its familiar form
    assert any('"speech-mesh/client" has already been defined' in p for p in problems), problems


# --------------------------------------------------------------------------- the restart extension


def test_restart_extension_accepts_target_and_dockerfile_contents() -> None:
    """Both go to docker_build of the base image (tilt-extensions restart_process)."""
    extra = """
docker_build_with_restart('speech-mesh/extra', '.', entrypoint=['/app/.venv/bin/books'],
    live_update=[sync('services/books/src', '/app/services/books/src')],
    dockerfile_contents=read_file('services/Dockerfile'), target='runtime',
    only=['services/books/src'])
"""
    problems = _problems_with(TILTFILE + extra)
    assert problems == [], problems


def test_restart_extension_refuses_dockerfile_and_dockerfile_contents_together() -> None:
    extra = """
docker_build_with_restart('speech-mesh/extra', '.', entrypoint=['x'],
    live_update=[sync('services/books/src', '/app/services/books/src')],
    dockerfile='services/Dockerfile', dockerfile_contents='FROM scratch')
"""
    problems = _problems_with(TILTFILE + extra)
    assert any("Cannot specify both dockerfile and dockerfile_contents" in p for p in problems)


# --------------------------------------------------------------------------- the CLI


def _repo_copy(tmp_path: Path) -> Path:
    skip = shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", ".pytest_cache", "data", ".mypy_cache", ".ruff_cache"
    )
    root = tmp_path / "repo"
    shutil.copytree(ROOT, root, ignore=skip)
    return root


def test_the_cli_fails_on_a_tiltfile_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`uv run repocheck` reports what the Tiltfile tests report, not only the k8s checks."""
    root = _repo_copy(tmp_path)
    tiltfile = root / "Tiltfile"
    text = tiltfile.read_text()
    assert "resource_deps=['protos-codegen']" in text
    tiltfile.write_text(text.replace("resource_deps=['protos-codegen']", "resource_dep=['x']"))
    assert main(["--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "tiltfile: Tiltfile: k8s_resource(): unknown keyword 'resource_dep'" in out
    # That is the only failing check: the copy is otherwise the repository.
    summary = re.search(r"repocheck: (\d+) of (\d+) checks passed", out)
    assert summary is not None, out
    assert int(summary[1]) == int(summary[2]) - 1, out


def test_the_cli_lists_the_tiltfile_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list"]) == 0
    assert "\ntiltfile " in "\n" + capsys.readouterr().out


def test_the_cli_prints_tilts_message_for_a_bad_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A value Tilt refuses is printed as Tilt words it: function, parameter, what was wrong."""
    root = _repo_copy(tmp_path)
    tiltfile = root / "Tiltfile"
    tiltfile.write_text(tiltfile.read_text() + "\nk8s_resource('books', pod_readiness='bogus')\n")
    assert main(["--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert (
        'tiltfile: Tiltfile: k8s_resource(): for parameter "pod_readiness": '
        "Invalid value. Allowed: {ignore, wait}. Got: bogus\n" in out
    ), out


# --------------------------------------------------------------------------- pod selection

SELECTORS = "extra_pod_selectors=[{'cnpg.io/cluster': 'books-db', 'cnpg.io/podRole': 'instance'}]"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "pod_readiness='wait'",
            "pod_readiness='ready'",
            'k8s_resource(): for parameter "pod_readiness": Invalid value. Allowed: '
            "{ignore, wait}. Got: ready",
        ),
        (
            "pod_readiness='wait'",
            "pod_readiness=True",
            'k8s_resource(): for parameter "pod_readiness": Must be a string. Got: bool',
        ),
        (
            SELECTORS,
            "extra_pod_selectors='cnpg.io/cluster=books-db'",
            "k8s_resource(): pod labels must be a dict or a list; got starlark.String",
        ),
        (
            SELECTORS,
            "extra_pod_selectors=[{'cnpg.io/instance': 1}]",
            "k8s_resource(): pod label values must be strings; got '1' of type starlark.Int",
        ),
    ],
)
def test_a_wrong_pod_selection_of_the_database_is_reported(
    old: str, new: str, expected: str
) -> None:
    result = tilt.evaluate_tiltfile(ROOT, source=_edit(old, new), flags={"books-db": "postgres"})
    problems = tilt.check_tiltfile(ROOT, result)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    "selection",
    [
        "extra_pod_selectors={'cnpg.io/cluster': 'books-db'}, pod_readiness='ignore'",
        "extra_pod_selectors=[], pod_readiness=''",
        "extra_pod_selectors=[{'cnpg.io/cluster': 'books-db'}, {'a': 'b'}],"
        " pod_readiness='succeeded'",
    ],
)
def test_every_pod_selection_tilt_accepts_passes(selection: str) -> None:
    source = _edit(
        SELECTORS + ",\n        pod_readiness='wait',",
        selection + ",",
    )
    result = tilt.evaluate_tiltfile(ROOT, source=source, flags={"books-db": "postgres"})
    assert tilt.check_tiltfile(ROOT, result) == []
