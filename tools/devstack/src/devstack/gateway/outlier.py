"""Passive outlier detection per destination, after a DestinationRule's ``outlierDetection``.

Locally each destination (host + subset) is one address, so "ejecting the host"
means the weighted pick leaves that destination out (while another destination
of the route remains) until ``baseEjectionTime x times ejected`` has passed, as
in Envoy; the multiplier goes down by one for every ``interval`` the destination
spends back in rotation, as Envoy's does. ``maxEjectionPercent``: Envoy always
lets the first host of a pool be ejected, so for a one-address destination any
value but 0 allows the ejection (0 disables it). Envoy ends an ejection at its
next ``interval`` sweep; here it ends exactly when its time is up. Counted like
Envoy. Without ``splitExternalLocalOriginErrors``:
``consecutive5xxErrors`` counts 5xx answers and no-answer failures,
``consecutiveGatewayErrors`` counts 502/503/504 and no-answer failures. With it,
those two count answers only, and ``consecutiveLocalOriginFailures`` counts the
no-answer failures (connect failure, reset, timeout; any answer resets it).

When every destination of a route is ejected the gateway answers Envoy's own
503 "no healthy upstream" (Istio sets the panic threshold to
``minHealthPercent``, 0 by default, so Envoy never falls back to ejected hosts);
see :meth:`devstack.gateway.proxy.Proxy._choose`.

Every ejection and every return to the pick is one log line (logger
``devstack.gateway``): a skewed split always has a line that explains it. A
destination that the stack runner restarts is not counted here at all (it is
unready, :mod:`devstack.gateway.endpoints`), and :meth:`OutlierDetector.reset`
forgets its state when it is ready again, like a fresh endpoint.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from devstack.gateway.retry import GATEWAY_ERROR_CODES
from devstack.gateway.routing import Destination

log = logging.getLogger("devstack.gateway")


@dataclass(frozen=True, slots=True)
class OutlierPolicy:
    consecutive_5xx: int | None = None
    consecutive_gateway: int | None = None
    consecutive_local_origin: int | None = None
    split_local_origin: bool = False
    panic: bool = False
    base_ejection_s: float = 30.0
    max_ejection_s: float = 300.0
    interval_s: float = 10.0


@dataclass(slots=True)
class _State:
    consecutive_5xx: int = 0
    consecutive_gateway: int = 0
    consecutive_local_origin: int = 0
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
                    log.info(
                        "outlier detection: destination back in the pick",
                        extra={
                            "destination": destination.key,
                            "times_ejected": self._states[destination].times_ejected,
                        },
                    )
        return self._ejected

    def reset(self, destination: Destination) -> None:
        """Forget the destination's counts and ejections (it is a fresh endpoint)."""
        self._states.pop(destination, None)
        self._ejected.discard(destination)

    def state(self, destination: Destination) -> dict[str, float | int]:
        """What ``stack status`` shows: seconds of ejection left and the multiplier."""
        state = self._states.get(destination)
        if state is None:
            return {"ejected_for_s": 0.0, "times_ejected": 0}
        left = max(0.0, state.ejected_until - self.clock())
        return {"ejected_for_s": round(left, 1), "times_ejected": state.times_ejected}

    def usable(self, destination: Destination, ejected: set[Destination]) -> bool:
        """Not ejected, or ejected but its policy's panic threshold routes to it anyway."""
        if destination not in ejected:
            return True
        policy = self.policies.get(destination)
        return policy is not None and policy.panic

    def record_status(self, destination: Destination, status: int) -> bool:
        """Count an answer; True when it ejects the destination."""
        return self._record(destination, status >= 500, status in GATEWAY_ERROR_CODES, False)

    def record_failure(self, destination: Destination) -> bool:
        """Count a no-answer failure (connect failure, reset, timeout)."""
        return self._record(destination, True, True, True)

    def _record(
        self, destination: Destination, is_5xx: bool, is_gateway: bool, local_origin: bool
    ) -> bool:
        policy = self.policies.get(destination)
        if policy is None:
            return False
        state = self._states.setdefault(destination, _State())
        now = self.clock()
        _decay(state, policy, now)
        if policy.split_local_origin:
            # Answers and connection failures are counted apart (Envoy's
            # split_external_local_origin_errors): an answer ends a run of
            # connection failures, a connection failure leaves the answer counts.
            if local_origin:
                state.consecutive_local_origin += 1
            else:
                state.consecutive_local_origin = 0
                state.consecutive_5xx = state.consecutive_5xx + 1 if is_5xx else 0
                state.consecutive_gateway = state.consecutive_gateway + 1 if is_gateway else 0
        else:
            state.consecutive_5xx = state.consecutive_5xx + 1 if is_5xx else 0
            state.consecutive_gateway = state.consecutive_gateway + 1 if is_gateway else 0
        tripped = (
            _reached(state.consecutive_5xx, policy.consecutive_5xx)
            or _reached(state.consecutive_gateway, policy.consecutive_gateway)
            or (
                policy.split_local_origin
                and _reached(state.consecutive_local_origin, policy.consecutive_local_origin)
            )
        )
        if not tripped or state.ejected_until > now:
            return False
        state.times_ejected += 1
        duration = min(policy.base_ejection_s * state.times_ejected, policy.max_ejection_s)
        state.ejected_until = state.decayed_until = now + duration
        reason = _reason(state, policy, local_origin)
        state.consecutive_5xx = state.consecutive_gateway = state.consecutive_local_origin = 0
        self._ejected.add(destination)
        log.warning(
            "outlier detection: destination ejected",
            extra={
                "destination": destination.key,
                "reason": reason,
                "ejected_for_s": duration,
                "times_ejected": state.times_ejected,
            },
        )
        return True


def _reason(state: _State, policy: OutlierPolicy, local_origin: bool) -> str:
    """Which counter tripped, in the DestinationRule's words."""
    if policy.split_local_origin and _reached(
        state.consecutive_local_origin, policy.consecutive_local_origin
    ):
        return f"{state.consecutive_local_origin} consecutive local-origin failures"
    kind = "connection failures" if local_origin else "errors"
    if _reached(state.consecutive_gateway, policy.consecutive_gateway):
        return f"{state.consecutive_gateway} consecutive gateway {kind}"
    return f"{state.consecutive_5xx} consecutive 5xx {kind}"


def _reached(count: int, threshold: int | None) -> bool:
    return threshold is not None and count >= threshold


def _decay(state: _State, policy: OutlierPolicy, now: float) -> None:
    """One ejection forgiven per full interval spent back in rotation."""
    if state.times_ejected == 0 or now < state.ejected_until:
        return
    intervals = int((now - state.decayed_until) // policy.interval_s)
    if intervals > 0:
        state.times_ejected = max(0, state.times_ejected - intervals)
        state.decayed_until += intervals * policy.interval_s
