"""Retry policy with Envoy's semantics for the ``retryOn`` conditions the gateway supports.

Envoy (and so Istio):

- ``5xx``: any 5xx response, and an upstream that does not answer at all
  (connect failure, reset/disconnect, per-try timeout).
- ``gateway-error``: 502, 503 or 504, and the same no-answer cases as ``5xx``.
- ``connect-failure``: the connection to the upstream could not be made.
- ``reset``: the upstream did not answer at all (connect failure, reset/disconnect
  before the response headers, per-try timeout), whether or not the request had
  already been sent: a non-idempotent request (``POST``) can be replayed.
- ``reset-before-request``: the same failures, but only while no byte of the
  request has been sent upstream by any try of it (Envoy's
  ``upstream_request_started``, sticky across tries: ``retry_state_impl.cc``,
  ``wouldRetryFromReset``; ``router.cc`` sets it from
  ``first_upstream_tx_byte_sent``). Here "sent" means aiohttp has written the
  request headers to the connection.
- a bare status code (``"503"``): that response code (Istio's
  ``retriable-status-codes`` shorthand).

``attempts`` is the number of retries (so up to ``attempts + 1`` tries).
Retries back off like Envoy: fully jittered exponential, base 25 ms, capped at 250 ms.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

SUPPORTED_CONDITIONS = frozenset(
    {"5xx", "gateway-error", "connect-failure", "reset", "reset-before-request"}
)
# Conditions that can never happen behind the local gateway (HTTP/1.1 upstreams,
# plain HTTP routes): accepted with a warning that names them.
NOT_APPLICABLE_CONDITIONS = frozenset(
    {
        "refused-stream",
        "cancelled",
        "deadline-exceeded",
        "internal",
        "resource-exhausted",
        "unavailable",
        "retriable-status-codes",
    }
)
GATEWAY_ERROR_CODES = frozenset({502, 503, 504})
BACKOFF_BASE_S = 0.025
BACKOFF_MAX_S = 0.25


class Failure(enum.Enum):
    """How a try ended without an upstream response."""

    CONNECT_FAILURE = "connect-failure"
    RESET = "reset"
    PER_TRY_TIMEOUT = "per-try-timeout"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int
    per_try_timeout_s: float | None
    retry_on: frozenset[str]
    status_codes: frozenset[int] = frozenset()

    def retries_status(self, status: int) -> bool:
        if status in self.status_codes:
            return True
        if "5xx" in self.retry_on and status >= 500:
            return True
        return "gateway-error" in self.retry_on and status in GATEWAY_ERROR_CODES

    def retries_failure(self, failure: Failure, *, request_started: bool = True) -> bool:
        """Whether a try that ended in ``failure`` is retried (Envoy's ``wouldRetryFromReset``).

        ``request_started``: some try of this request has already sent bytes
        upstream (when unknown, assume it has: never replay by accident).
        """
        if failure is Failure.CONNECT_FAILURE and "connect-failure" in self.retry_on:
            return True
        if "reset-before-request" in self.retry_on and not request_started:
            return True
        return bool(self.retry_on & {"5xx", "gateway-error", "reset"})


# Istio's default when a route declares no `retries`: 2 retries on connection
# failures (its other defaults, refused-stream and gRPC codes, cannot occur here).
DEFAULT_RETRY_POLICY = RetryPolicy(
    attempts=2, per_try_timeout_s=None, retry_on=frozenset({"connect-failure"})
)
NO_RETRY_POLICY = RetryPolicy(attempts=0, per_try_timeout_s=None, retry_on=frozenset())


def backoff_s(retry_number: int, rng: random.Random | None = None) -> float:
    """Delay before retry ``retry_number`` (1-based): Envoy's jittered exponential backoff."""
    ceiling = min(BACKOFF_BASE_S * (2**retry_number - 1), BACKOFF_MAX_S)
    return (rng or random).uniform(0.0, ceiling)


def parse_retry_on(text: str) -> tuple[frozenset[str], frozenset[int], list[str], list[str]]:
    """Split ``retryOn`` into (conditions, status codes, not-applicable, unsupported)."""
    conditions: set[str] = set()
    codes: set[int] = set()
    not_applicable: list[str] = []
    unsupported: list[str] = []
    for raw in str(text).split(","):
        token = raw.strip()
        if not token:
            continue
        if token.isdigit():
            codes.add(int(token))
        elif token in SUPPORTED_CONDITIONS:
            conditions.add(token)
        elif token in NOT_APPLICABLE_CONDITIONS:
            not_applicable.append(token)
        else:
            unsupported.append(token)
    return frozenset(conditions), frozenset(codes), not_applicable, unsupported
