"""Which destinations are endpoints right now: the local twin of Kubernetes' ready endpoints.

In a cluster a pod is an endpoint of its Service while its readiness probe
passes; one that restarts (or fails the probe) leaves the endpoint list without
counting as a failure anywhere, and comes back as a fresh endpoint whose
outlier state starts from zero. Locally each destination (host + subset) is one
process that the stack runner supervises and probes, so the runner tells the
gateway (through its admin socket, :mod:`devstack.gateway.admin`) when a
destination stops or starts being ready, and the proxy leaves an unready one
out of the pick. Without a runner (a gateway started by hand) every
destination is ready, as before.

Every change is one log line, like the outlier ejections and returns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from devstack.gateway.outlier import OutlierDetector
from devstack.gateway.routing import Destination

log = logging.getLogger("devstack.gateway")


class UnknownEndpoint(KeyError):
    """No destination of the routes has this key."""


@dataclass(slots=True)
class Endpoints:
    """The ready/unready state of each destination, by its key (``host`` or ``host/subset``)."""

    outlier: OutlierDetector
    destinations: dict[str, Destination] = field(default_factory=dict)
    # The hot path reads this: empty (the common case) costs one truth test per request.
    unready: frozenset[Destination] = frozenset()
    _unready_keys: set[str] = field(default_factory=set)

    def know(self, destinations: Iterable[Destination]) -> None:
        """The destinations the routes name (after a start or a reload of the routes)."""
        self.destinations = {d.key: d for d in destinations}
        self._refresh()

    def is_ready(self, key: str) -> bool:
        return key not in self._unready_keys

    def set_ready(self, key: str, ready: bool, reason: str = "") -> bool:
        """Mark one destination; True when that changed its state. Raises UnknownEndpoint."""
        destination = self.destinations.get(key)
        if destination is None:
            raise UnknownEndpoint(key)
        was_ready = key not in self._unready_keys
        if ready == was_ready:
            return False
        if ready:
            self._unready_keys.discard(key)
            # A fresh endpoint, as in Kubernetes: failures before it went away are forgotten.
            self.outlier.reset(destination)
            log.info(
                "endpoint ready: back in the pick",
                extra={"destination": key, "reason": reason or "ready"},
            )
        else:
            self._unready_keys.add(key)
            log.info(
                "endpoint not ready: out of the pick (not counted as failures)",
                extra={"destination": key, "reason": reason or "not ready"},
            )
        self._refresh()
        return True

    def _refresh(self) -> None:
        self.unready = frozenset(
            d for key, d in self.destinations.items() if key in self._unready_keys
        )

    def snapshot(self) -> dict[str, bool]:
        return {key: key not in self._unready_keys for key in sorted(self.destinations)}
