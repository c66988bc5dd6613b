"""The routing model: ordered routes, their matches and weighted destinations (pure, no I/O).

Semantics follow Istio/Envoy: routes are tried in order and the first whose
matches accept the request wins (a route with no match accepts everything); the
matches of one route are OR-ed, the conditions inside one match AND-ed. Paths
are compared without the query string; ``prefix`` is a plain string prefix, as
in Envoy.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from devstack.gateway.retry import DEFAULT_RETRY_POLICY, RetryPolicy

if TYPE_CHECKING:
    from devstack.gateway.fault import Fault


@dataclass(frozen=True, slots=True)
class Destination:
    """A service host (short name, e.g. ``text-to-speech``) and optional subset."""

    host: str
    subset: str | None = None

    @property
    def key(self) -> str:
        """How the destination is named in ``GATEWAY_UPSTREAMS``: ``host`` or ``host/subset``."""
        return self.host if self.subset is None else f"{self.host}/{self.subset}"


@dataclass(frozen=True, slots=True)
class WeightedDestination:
    destination: Destination
    weight: int


@dataclass(frozen=True, slots=True)
class StringMatch:
    """Istio StringMatch (``exact`` or ``prefix``)."""

    kind: str
    value: str

    def matches(self, text: str | None) -> bool:
        if text is None:
            return False
        if self.kind == "exact":
            return text == self.value
        return text.startswith(self.value)


@dataclass(frozen=True, slots=True)
class MatchRequest:
    uri: StringMatch | None = None
    headers: tuple[tuple[str, StringMatch], ...] = ()

    def matches(self, path: str, headers: Mapping[str, str]) -> bool:
        if self.uri is not None and not self.uri.matches(path):
            return False
        return all(match.matches(headers.get(name)) for name, match in self.headers)


@dataclass(frozen=True, slots=True)
class Rewrite:
    uri: str | None = None
    authority: str | None = None


@dataclass(slots=True)
class Route:
    name: str
    destinations: tuple[WeightedDestination, ...]
    matches: tuple[MatchRequest, ...] = ()
    rewrite: Rewrite | None = None
    timeout_s: float | None = None
    retry: RetryPolicy = DEFAULT_RETRY_POLICY
    fault: Fault | None = None  # Istio's fault injection (devstack.gateway.fault)
    _cumulative: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if not self.destinations:
            raise ValueError(f"route {self.name!r} has no destination")
        self._cumulative = list(itertools.accumulate(d.weight for d in self.destinations))

    def first_match(self, path: str, headers: Mapping[str, str]) -> MatchRequest | None:
        """The match that accepts the request; a route without matches accepts everything."""
        if not self.matches:
            return _MATCH_ALL
        for match in self.matches:
            if match.matches(path, headers):
                return match
        return None

    def pick(
        self,
        avoid: Collection[Destination] = (),
        rand: Callable[[], float] = random.random,
    ) -> Destination:
        """A destination drawn by weight (independently per call).

        Destinations in ``avoid`` (failed this request, ejected or not ready) are
        left out while another one with a weight is left; if every destination is
        avoided the draw is over all of them (like Envoy's panic mode). A
        destination of weight 0 is never drawn while another has a weight: in
        Envoy a weighted cluster of weight 0 gets no request, whatever the
        health of the others.
        """
        if avoid:
            remaining = [
                d for d in self.destinations if d.destination not in avoid and d.weight > 0
            ]
            if remaining and len(remaining) < len(self.destinations):
                return _weighted(remaining, rand)
        total = self._cumulative[-1]
        if total <= 0:
            return self.destinations[0].destination
        index = bisect.bisect_right(self._cumulative, rand() * total)
        return self.destinations[min(index, len(self.destinations) - 1)].destination


def _weighted(destinations: list[WeightedDestination], rand: Callable[[], float]) -> Destination:
    total = sum(d.weight for d in destinations)
    if total <= 0:
        return destinations[0].destination
    point = rand() * total
    for weighted in destinations:
        point -= weighted.weight
        if point < 0:
            return weighted.destination
    return destinations[-1].destination


_MATCH_ALL = MatchRequest()


def rewrite_path(path: str, query: str, match: MatchRequest, rewrite: Rewrite | None) -> str:
    """The upstream path with query: Envoy's prefix_rewrite for a prefix match, else the path."""
    if rewrite is not None and rewrite.uri is not None:
        if match.uri is not None and match.uri.kind == "prefix":
            path = rewrite.uri + path[len(match.uri.value) :]
        else:
            path = rewrite.uri
    return f"{path}?{query}" if query else path


@dataclass(frozen=True, slots=True)
class VirtualHost:
    """The routes of the VirtualServices that share a host (``*`` for any Host)."""

    domain: str
    routes: tuple[Route, ...]


@dataclass
class RouteTable:
    """Virtual hosts by domain, chosen from the request's Host as Envoy does.

    An exact domain wins, then the longest ``*.suffix`` wildcard, then ``*``.
    """

    virtual_hosts: tuple[VirtualHost, ...]
    _exact: dict[str, tuple[Route, ...]] = field(default_factory=dict, repr=False)
    _wildcards: list[tuple[str, tuple[Route, ...]]] = field(default_factory=list, repr=False)
    _any: tuple[Route, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        for vhost in self.virtual_hosts:
            domain = vhost.domain.lower()
            if domain == "*":
                self._any = vhost.routes
            elif domain.startswith("*"):
                self._wildcards.append((domain[1:], vhost.routes))
            else:
                self._exact[domain] = vhost.routes
        self._wildcards.sort(key=lambda item: len(item[0]), reverse=True)

    @property
    def routes(self) -> tuple[Route, ...]:
        return tuple(route for vhost in self.virtual_hosts for route in vhost.routes)

    def routes_for_host(self, host: str | None) -> tuple[Route, ...]:
        if host and (self._exact or self._wildcards):
            name = _strip_port(host.lower())
            routes = self._exact.get(name)
            if routes is not None:
                return routes
            for suffix, wildcard_routes in self._wildcards:
                if name.endswith(suffix):
                    return wildcard_routes
        return self._any

    def match(
        self, host: str | None, path: str, headers: Mapping[str, str]
    ) -> tuple[Route, MatchRequest] | None:
        for route in self.routes_for_host(host):
            match = route.first_match(path, headers)
            if match is not None:
                return route, match
        return None

    def destinations(self) -> set[Destination]:
        return {d.destination for route in self.routes for d in route.destinations}


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    name, _, port = host.rpartition(":")
    return name if name and port.isdigit() else host
