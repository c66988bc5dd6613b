"""Evaluate the Tiltfile without Tilt, then check what it declared.

The Tiltfile runs in a Starlark interpreter (``starlark-pyo3``) whose Tilt
builtins are recorders generated from ``tilt-api.json`` (Tilt's real
parameter lists, see ``../shared/tilt/README.md``). Each recorder checks the
call (unknown or misspelled keywords, keywords the docs show but Tilt rejects,
too many positional arguments, missing required arguments), records it, and
returns a plausible value: files are really read, ``kustomize()`` really
renders, ``local()`` runs nothing. ``ext://restart_process`` is provided as a
recorder with the extension's signature.

``check_tiltfile`` then cross-checks the recorded calls against the
repository: every service image is built from an existing context and
Dockerfile, live_update paths exist and are inside ``only=``, every image the
deployed manifests use is built, every ``k8s_resource`` names a real workload.
``built_images`` is what other checks use to ask "which images does Tilt
build?".

Values are judged as Tilt judges them when the Tiltfile loads (``rules``, with
``goparse`` for the Go parsers it calls; read from Tilt v0.34.0's source), and
``checks.tilt_refusals`` is everything real Tilt would refuse, resource
assembly included; ``check_tiltfile`` adds this project's own rules.

One module per step: ``argtypes`` (what Tilt's unpackers accept), ``api``
(signatures from ``tilt-api.json``), ``results`` (what an evaluation records),
``fakes`` (what each builtin returns), ``evaluation`` (the Starlark run),
``checks`` (the cross-checks). The names below are the public surface.
"""

from __future__ import annotations

from repocheck.k8s.manifests import REPO_ROOT
from repocheck.tilt.api import TILT_API_ENV, BoundCall, Param, Signature, TiltApi, default_api_path
from repocheck.tilt.argtypes import Kind, type_problems
from repocheck.tilt.checks import (
    IMAGE_PREFIX,
    IMAGE_TAG,
    SERVICE_IMAGES,
    built_images,
    check_tiltfile,
    manifest_images,
    tilt_refusals,
)
from repocheck.tilt.evaluation import default_kube_context, evaluate_tiltfile
from repocheck.tilt.fakes import TiltfileFailed
from repocheck.tilt.results import INLINE_DOCKERFILE, ImageBuild, TiltfileResult

__all__ = [
    "IMAGE_PREFIX",
    "IMAGE_TAG",
    "INLINE_DOCKERFILE",
    "REPO_ROOT",
    "SERVICE_IMAGES",
    "TILT_API_ENV",
    "BoundCall",
    "ImageBuild",
    "Kind",
    "Param",
    "Signature",
    "TiltApi",
    "TiltfileFailed",
    "TiltfileResult",
    "built_images",
    "check_tiltfile",
    "default_api_path",
    "default_kube_context",
    "evaluate_tiltfile",
    "manifest_images",
    "tilt_refusals",
    "type_problems",
]
