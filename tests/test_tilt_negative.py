"""Each Tiltfile check fails on the mistake it exists for."""

from __future__ import annotations

import pytest
from repocheck import tilt

ROOT = tilt.REPO_ROOT
TILTFILE = (ROOT / "Tiltfile").read_text()


def _problems_with(source: str) -> list[str]:
    result = tilt.evaluate_tiltfile(ROOT, source=source)
    return tilt.check_tiltfile(ROOT, result)


def _edit(old: str, new: str) -> str:
    assert TILTFILE.count(old) >= 1, f"the Tiltfile no longer contains {old!r}"
    return TILTFILE.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # misspelled keyword of a builtin
        ("labels=['data']", "label=['data']", "k8s_resource(): unknown keyword 'label'"),
        # misspelled keyword that the restart extension would pass to docker_build
        ("only=DEPENDENCY_FILES", "olny=DEPENDENCY_FILES", "unknown keyword 'olny'"),
        # the name the docs show, which Tilt rejects
        (
            "fall_back_on(DEPENDENCY_FILES)",
            "fall_back_on(files=DEPENDENCY_FILES)",
            "keyword 'files' is the name in Tilt's docs, but Tilt rejects it; use 'paths'",
        ),
        # too many positional arguments
        (
            "link('http://localhost/', 'gateway (kind port mapping)')",
            "link('http://localhost/', 'gateway', 'extra')",
            "link(): 3 positional arguments, Tilt accepts at most 2",
        ),
        # missing required argument
        (
            "[sync(src, '/app/' + src) for src in sources]",
            "[sync(src) for src in sources]",
            "sync(): missing required argument 'remote_path'",
        ),
    ],
)
def test_a_wrong_call_is_reported(old: str, new: str, expected: str) -> None:
    problems = _problems_with(_edit(old, new))
    assert any(expected in p for p in problems), problems


def test_a_misspelled_builtin_stops_the_evaluation() -> None:
    problems = _problems_with(_edit("local_resource(", "local_resorce("))
    assert any("local_resorce" in p for p in problems), problems


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
    problems = _problems_with(_edit("    'client': ('client', 'client'),\n", ""))
    assert any("no docker_build for speech-mesh/client" in p for p in problems), problems
    assert any("'speech-mesh/client'" in p and "no docker_build" in p for p in problems)


def test_a_k8s_resource_naming_no_workload_is_reported() -> None:
    problems = _problems_with(
        _edit("    'client',\n    labels=['client'],", "    'clients',\n    labels=['client'],")
    )
    assert any("k8s_resource('clients') names no workload" in p for p in problems), problems
    assert any("workload 'client' has no k8s_resource" in p for p in problems), problems


def test_a_missing_live_update_path_is_reported() -> None:
    problems = _problems_with(
        _edit(
            "SHARED_SOURCES = ['libs/servicekit/src'", "SHARED_SOURCES = ['libs/servicekit/source'"
        )
    )
    assert any("sync path 'libs/servicekit/source' does not exist" in p for p in problems), problems


def test_only_leaving_out_a_dockerfile_copy_source_is_reported() -> None:
    problems = _problems_with(
        _edit("only=DEPENDENCY_FILES + sources", "only=['uv.lock'] + sources")
    )
    assert any("which only= leaves out" in p and "pyproject.toml" in p for p in problems), problems


def test_restart_container_is_refused() -> None:
    problems = _problems_with(
        _edit(
            "fall_back_on(DEPENDENCY_FILES),",
            "fall_back_on(DEPENDENCY_FILES), restart_container(),",
        )
    )
    assert any("restart_container() is not allowed" in p for p in problems), problems


def test_an_entrypoint_other_than_the_images_is_reported() -> None:
    problems = _problems_with(
        _edit("entrypoint=['/app/.venv/bin/' + script]", "entrypoint=['/app/.venv/bin/python']")
    )
    assert any("but the image's ENTRYPOINT is" in p for p in problems), problems
