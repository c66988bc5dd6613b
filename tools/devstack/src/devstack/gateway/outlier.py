"""Passive outlier detection per destination, after a DestinationRule's ``outlierDetection``.

Locally each destination (host + subset) is one address, so "ejecting the host"
means the weighted pick leaves that destination out (while another destination
of the route remains) until ``baseEjectionTime x times ejected`` has passed, as
in Envoy; the multiplier goes down by one for every ``interval`` the destination
spends back in rotation, as Envoy's does. ``maxEjectionPercent``: Envoy always
lets the first host of a pool be ejected, so for a one-address destination any
value but 0 allows the ejection (0 disables it). Envoy ends an ejection at its
next ``interval`` sweep; here it ends exactly when its time is up. Counted like
Envoy without split local-origin errors:
``consecutive5xxErrors`` counts 5xx answers and no-answer failures,
``consecutiveGatewayErrors`` counts 502/503/504 and no-answer failures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from devstack.gateway.retry import GATEWAY_ERROR_CODES
from devstack.gateway.routing import Destination


@dataclass(frozen=True, slots=True)
class OutlierPolicy:
    consecutive_5xx: int | None = None
    consecutive_gateway: int | None = None
    base_ejection_s: float = 30.0
    max_ejection_s: float = 300.0
    interval_s: float = 10.0


@dataclass(slots=True)
class _State:
    consecutive_5xx: int = 0
    consecutive_gateway: int = 0
    times_ejected: int = 0
    ejected_until: float = 0.0
    decayed_until: float = 0.0


@dataclass(slots=True)
class OutlierDetector:
    """Tracks consecutive errors per destination and which ones are ejected now."""

    policies: dict[Destination, OutlierPolicy]
    clock: Callable[[], float] = time.monotonic
    _states: dict[Destination, _State] = field(default_factory=dict)
    _ejected: set[Destination] = field(default_factory=set)

    def ejected(self) -> set[Destination]:
        """Destinations ejected right now (an empty set, the common case, costs nothing)."""
        if self._ejected:
            now = self.clock()
            for destination in list(self._ejected):
                if self._states[destination].ejected_until <= now:
                    self._ejected.discard(destination)
        return self._ejected

    def record_status(self, destination: Destination, status: int) -> bool:
        """Count an answer; True when it ejects the destination."""
        return self._record(destination, status >= 500, status in GATEWAY_ERROR_CODES)

    def record_failure(self, destination: Destination) -> bool:
        """Count a no-answer failure (connect failure, reset, timeout)."""
        return self._record(destination, True, True)

    def _record(self, destination: Destination, is_5xx: bool, is_gateway: bool) -> bool:
        policy = self.policies.get(destination)
        if policy is None:
            return False
        state = self._states.setdefault(destination, _State())
        now = self.clock()
        _decay(state, policy, now)
        state.consecutive_5xx = state.consecutive_5xx + 1 if is_5xx else 0
        state.consecutive_gateway = state.consecutive_gateway + 1 if is_gateway else 0
        tripped = (
            policy.consecutive_5xx is not None and state.consecutive_5xx >= policy.consecutive_5xx
        ) or (
            policy.consecutive_gateway is not None
            and state.consecutive_gateway >= policy.consecutive_gateway
        )
        if not tripped or state.ejected_until > now:
            return False
        state.times_ejected += 1
        duration = min(policy.base_ejection_s * state.times_ejected, policy.max_ejection_s)
        state.ejected_until = state.decayed_until = now + duration
        state.consecutive_5xx = state.consecutive_gateway = 0
        self._ejected.add(destination)
        return True


def _decay(state: _State, policy: OutlierPolicy, now: float) -> None:
    """One ejection forgiven per full interval spent back in rotation."""
    if state.times_ejected == 0 or now < state.ejected_until:
        return
    intervals = int((now - state.decayed_until) // policy.interval_s)
    if intervals > 0:
        state.times_ejected = max(0, state.times_ejected - intervals)
        state.decayed_until += intervals * policy.interval_s
