"""Probe traffic: the kubelet's readiness and liveness probes (and the local stack's).

The kubelet sends ``User-Agent: kube-probe/<version>``; the local stack's runner
sends ``kube-probe/stack``. Such requests on the probe paths are not traffic:
they get no access-log line and no trace span (one of each per service every
few seconds would drown the requests that matter, and in APM they would give v1
and v2 the same number of ``GET /readyz`` whatever the split). Anything else on
those paths (a person's curl) is logged and traced as usual.
"""

from __future__ import annotations

from collections.abc import Iterable

PROBE_PATHS = frozenset({"/healthz", "/readyz", "/livez"})
PROBE_AGENT = b"kube-probe/"


def is_probe(path: str, headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """A probe request: a probe path asked by a probe agent (ASGI header pairs)."""
    if path not in PROBE_PATHS:
        return False
    return any(name == b"user-agent" and value.startswith(PROBE_AGENT) for name, value in headers)
