"""Canary weights from a file (``GATEWAY_WEIGHTS_FILE``), over the Istio files' weights.

What ``client canary`` sets on a running local gateway, without touching the
checked-in ``k8s/istio``. The file is JSON::

    {"weights": {"v1": 75, "v2": 25}}

and applies to every route whose destinations are exactly these subsets (each
weighted v1/v2 split: the routes the Tiltfile's ``--canary-weight`` patches),
the other routes untouched. No file: the Istio files' weights. A file that is
not that shape (not JSON, a weight below 0, a total of 0, a subset no route
splits) is one log line and the weights in force stay.

The gateway follows the file: it looks at it every ``POLL_S`` (its size and
modification time) and applies a change to new requests; after an Istio
reload the file's weights are applied again to the new routes. The stack sets
``GATEWAY_WEIGHTS_FILE`` to ``DATA_DIR/.stack/weights.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from devstack.gateway.proxy import Proxy
from devstack.gateway.routing import Route, RouteTable, VirtualHost, WeightedDestination

log = logging.getLogger("devstack.gateway")

POLL_S = 0.2
Watch = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


def parse_weights(text: str) -> dict[str, int]:
    """``{"weights": {subset: weight}}`` -> ``{subset: weight}`` (ValueError: why not)."""
    try:
        document = json.loads(text)
    except ValueError:
        raise ValueError("not JSON") from None
    weights = document.get("weights") if isinstance(document, dict) else None
    if not isinstance(weights, dict) or len(weights) < 2:
        raise ValueError('expected {"weights": {"v1": 75, "v2": 25}} (two subsets or more)')
    parsed: dict[str, int] = {}
    for subset, weight in weights.items():
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
            raise ValueError(f"weight of {subset!r} must be an integer >= 0, got {weight!r}")
        parsed[str(subset)] = weight
    if sum(parsed.values()) == 0:
        raise ValueError("total weight 0 (Istio refuses it too)")
    return parsed


def reweigh(table: RouteTable, weights: Mapping[str, int]) -> tuple[RouteTable, int]:
    """The table with ``weights`` on every route split over exactly those subsets; and how many."""
    changed = 0

    def route(original: Route) -> Route:
        nonlocal changed
        subsets = [d.destination.subset for d in original.destinations]
        if sorted(str(s) for s in subsets) != sorted(weights) or None in subsets:
            return original
        changed += 1
        destinations = tuple(
            WeightedDestination(d.destination, weights[str(d.destination.subset)])
            for d in original.destinations
        )
        return replace(original, destinations=destinations)

    hosts = tuple(
        VirtualHost(vhost.domain, tuple(route(r) for r in vhost.routes))
        for vhost in table.virtual_hosts
    )
    return RouteTable(hosts), changed


class WeightsFollower:
    """Applies the weights file to the proxy's routes, now and whenever either changes."""

    def __init__(self, proxy: Proxy, path: Path) -> None:
        self.proxy = proxy
        self.path = path
        self.base = proxy.table  # the Istio files' routes
        self.applied = proxy.table  # what the proxy was last given
        self.weights: dict[str, int] | None = None
        self.seen: tuple[int, int] | None = None  # (size, mtime_ns) of the file read

    def check(self) -> None:
        """One look at the file and at the proxy's routes."""
        if self.proxy.table is not self.applied:  # an Istio reload: new base routes
            self.base = self.proxy.table
            self.applied = self.base
            if self.weights is not None:
                self.apply(self.weights, "istio reload")
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            if self.seen is not None:
                self.seen = None
                self.weights = None
                self.proxy.table = self.applied = self.base
                log.info("canary weights file removed: the Istio files' weights apply")
            return
        except OSError as error:
            log.warning("cannot read the canary weights file", extra={"error": str(error)})
            return
        key = (stat.st_size, stat.st_mtime_ns)
        if key == self.seen:
            return
        self.seen = key
        try:
            weights = parse_weights(self.path.read_text())
        except (OSError, ValueError) as error:
            self.refuse(str(error))
            return
        self.apply(weights, "file")

    def refuse(self, problem: str) -> None:
        log.warning(
            "canary weights file refused, keeping the weights in force",
            extra={"file": str(self.path), "problem": problem},
        )

    def apply(self, weights: dict[str, int], why: str) -> None:
        table, changed = reweigh(self.base, weights)
        if not changed:
            self.refuse(f"no route splits over {sorted(weights)}")
            return
        self.weights = weights
        self.proxy.table = self.applied = table
        log.info(
            "canary weights applied",
            extra={"file": str(self.path), "weights": weights, "routes": changed, "after": why},
        )

    async def follow(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_S)


def follow_weights(proxy: Proxy, path: Path | None, watch: Watch | None) -> Watch | None:
    """``watch`` (the Istio reloader, or None) and, with a weights file, its follower too."""
    if path is None:
        return watch
    follower = WeightsFollower(proxy, path)
    follower.check()  # before the first request

    async def both(stop: asyncio.Event) -> None:
        tasks = [follower.follow(stop)] + ([watch(stop)] if watch is not None else [])
        await asyncio.gather(*tasks)

    return both
