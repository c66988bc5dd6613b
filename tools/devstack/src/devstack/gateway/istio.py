"""Build the gateway's routing from the Istio resources in a directory (pure: text in, model out).

Reads every ``*.yaml``/``*.yml`` file under the directory, keeps the Gateway(s)
selecting ``istio: ingressgateway`` (or the one named), the VirtualServices bound
to them, and the DestinationRules' subsets. Every field is classified:

- supported: applied with Istio/Envoy semantics;
- not applicable locally (e.g. DestinationRule ``tls``): a warning naming it;
- unsupported (e.g. ``uri.regex``, ``fault.abort.grpcStatus``): an error naming it; the gateway
  refuses to start, so a route is never silently different from the cluster's.

The resource model under it (the documents, names, hosts, which Gateway is the
ingress gateway and what a VirtualService is bound to) is :mod:`repomodel.istio`,
which the static checks (repocheck) read the same files with.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repomodel.istio import (
    DocumentError,
    binds,
    bound_gateways,
    describe,
    fqdn,
    ingress_gateways,
    load_documents,
    namespace,
    of_kind,
    qualified_name,
    short_host,
)
from servicekit.durations import parse_duration

from devstack.gateway.fault import parse_fault
from devstack.gateway.outlier import OutlierPolicy
from devstack.gateway.retry import (
    DEFAULT_RETRY_POLICY,
    NO_RETRY_POLICY,
    RetryPolicy,
    parse_retry_on,
)
from devstack.gateway.routing import (
    Destination,
    MatchRequest,
    Rewrite,
    Route,
    RouteTable,
    StringMatch,
    VirtualHost,
    WeightedDestination,
)

# What Istio applies when `retries` is given without `retryOn`.
ISTIO_DEFAULT_RETRY_ON = (
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
)

# Istio kinds in the directory that do not shape routing at the ingress gateway:
# each one is named in a warning at start-up.
_IGNORED_ISTIO_KINDS = {
    "AuthorizationPolicy",
    "PeerAuthentication",
    "RequestAuthentication",
    "Telemetry",
    "Sidecar",
    "EnvoyFilter",
    "ServiceEntry",
    "WorkloadEntry",
    "WasmPlugin",
    "ProxyConfig",
    "IstioOperator",
}

_VS_SPEC = {"hosts", "gateways", "http"}
_VS_SPEC_NOT_APPLICABLE = {"exportTo"}
_HTTP_ROUTE = {"name", "match", "route", "rewrite", "timeout", "retries", "fault"}
_MATCH = {"name", "uri", "headers", "gateways"}
_STRING_MATCH = {"exact", "prefix"}
_ROUTE_DESTINATION = {"destination", "weight"}
_DESTINATION = {"host", "subset", "port"}
_REWRITE = {"uri", "authority"}
_RETRIES = {"attempts", "perTryTimeout", "retryOn"}
_RETRIES_NOT_APPLICABLE = {"retryRemoteLocalities"}
_DR_SPEC = {"host", "subsets", "trafficPolicy"}
_DR_SPEC_NOT_APPLICABLE = {"exportTo", "workloadSelector"}
_SUBSET = {"name", "labels", "trafficPolicy"}
_TRAFFIC_POLICY = {"outlierDetection"}
_TRAFFIC_POLICY_NOT_APPLICABLE = {"tls", "connectionPool", "loadBalancer", "portLevelSettings"}
_OUTLIER = {
    "consecutive5xxErrors",
    "consecutiveGatewayErrors",
    "consecutiveLocalOriginFailures",
    "splitExternalLocalOriginErrors",
    "baseEjectionTime",
    "interval",
    "maxEjectionPercent",
    "minHealthPercent",
}
_OUTLIER_NOT_APPLICABLE: set[str] = set()


class IstioConfigError(Exception):
    """The Istio resources cannot be served faithfully; ``problems`` names each field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class GatewayConfig:
    table: RouteTable
    outlier: dict[Destination, OutlierPolicy]
    gateways: list[str]
    virtual_services: list[str]
    warnings: list[str] = field(default_factory=list)


def load_gateway_config(directory: Path, gateway_name: str | None = None) -> GatewayConfig:
    try:
        documents = load_documents(directory)
    except DocumentError as error:
        raise IstioConfigError([str(error)]) from None
    return build_gateway_config(documents, gateway_name, source=str(directory))


def build_gateway_config(
    documents: Iterable[Mapping[str, Any]],
    gateway_name: str | None = None,
    *,
    source: str = "the documents",
) -> GatewayConfig:
    builder = _Builder()
    docs = list(documents)
    gateways = ingress_gateways(docs, gateway_name)
    if not gateways:
        wanted = (
            f"named {gateway_name!r}" if gateway_name else "with selector istio: ingressgateway"
        )
        raise IstioConfigError([f"no Gateway {wanted} in {source}"])
    subsets = builder.destination_rules(of_kind(docs, "DestinationRule"))
    routes: list[Route] = []
    by_domain: dict[str, list[Route]] = {}
    bound: list[str] = []
    for doc in docs:
        kind = doc.get("kind")
        if kind in _IGNORED_ISTIO_KINDS:
            builder.warnings.append(f"{describe(doc, '?')}: not applied by the local gateway")
        if kind != "VirtualService":
            continue
        spec = doc.get("spec") or {}
        if not binds(bound_gateways(doc), namespace(doc), gateways):
            continue
        where = describe(doc, "?")
        bound.append(qualified_name(doc, "?"))
        vs_routes = builder.virtual_service(spec, where, gateways, subsets)
        routes.extend(vs_routes)
        for host in spec.get("hosts") or ["*"]:
            domain = fqdn(str(host), namespace(doc))
            by_domain.setdefault(domain, []).extend(vs_routes)
    if not bound:
        builder.errors.append(f"no VirtualService in {source} is bound to Gateway {gateways[0]}")
    for route in routes:
        for weighted in route.destinations:
            dest = weighted.destination
            if dest.subset is not None and dest.subset not in subsets.get(dest.host, {}):
                builder.errors.append(
                    f"route {route.name}: subset {dest.subset!r} of host {dest.host!r} "
                    "is not declared in any DestinationRule"
                )
    if builder.errors:
        raise IstioConfigError(builder.errors)
    return GatewayConfig(
        table=RouteTable(tuple(VirtualHost(d, tuple(r)) for d, r in by_domain.items())),
        outlier=builder.outlier_for(routes),
        gateways=gateways,
        virtual_services=bound,
        warnings=builder.warnings,
    )


class _Builder:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self._outlier: dict[Destination, OutlierPolicy] = {}
        self._host_outlier: dict[str, OutlierPolicy] = {}

    def check(
        self,
        value: Any,
        where: str,
        supported: Collection[str],
        not_applicable: Collection[str] = (),
    ) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            self.errors.append(f"{where}: expected a mapping, got {type(value).__name__}")
            return {}
        for key in value:
            if key in supported:
                continue
            if key in not_applicable:
                self.warnings.append(f"{where}.{key}: not applied by the local gateway")
            else:
                self.errors.append(f"{where}.{key}: not supported by the local gateway")
        return dict(value)

    # --- DestinationRules ---------------------------------------------------
    def destination_rules(self, rules: list[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        subsets: dict[str, dict[str, Any]] = {}
        for rule in rules:
            where = describe(rule, "?")
            spec = self.check(rule.get("spec") or {}, where, _DR_SPEC, _DR_SPEC_NOT_APPLICABLE)
            host = short_host(spec.get("host", ""))
            host_policy = self.traffic_policy(spec.get("trafficPolicy"), f"{where}.trafficPolicy")
            if host_policy is not None:
                self._host_outlier[host] = host_policy
            for index, subset in enumerate(spec.get("subsets") or []):
                sub_where = f"{where}.subsets[{index}]"
                subset_spec = self.check(subset, sub_where, _SUBSET)
                name = str(subset_spec.get("name", ""))
                subsets.setdefault(host, {})[name] = subset_spec.get("labels") or {}
                policy = self.traffic_policy(
                    subset_spec.get("trafficPolicy"), f"{sub_where}.trafficPolicy"
                )
                if policy is not None:
                    self._outlier[Destination(host, name)] = policy
        return subsets

    def traffic_policy(self, value: Any, where: str) -> OutlierPolicy | None:
        if value is None:
            return None
        policy = self.check(value, where, _TRAFFIC_POLICY, _TRAFFIC_POLICY_NOT_APPLICABLE)
        detection = policy.get("outlierDetection")
        if detection is None:
            return None
        spec = self.check(detection, f"{where}.outlierDetection", _OUTLIER, _OUTLIER_NOT_APPLICABLE)
        gateway_errors = self.integer(spec, "consecutiveGatewayErrors", where, 0)
        # Unset, Istio leaves Envoy's default (5, enforced); 0 disables it.
        errors_5xx = self.integer(spec, "consecutive5xxErrors", where, 5)
        split = spec.get("splitExternalLocalOriginErrors", False)
        if not isinstance(split, bool):
            self.errors.append(
                f"{where}.splitExternalLocalOriginErrors: expected true or false, got {split!r}"
            )
            split = False
        # Istio passes consecutiveLocalOriginFailures to Envoy only with the split.
        local_origin = self.integer(spec, "consecutiveLocalOriginFailures", where, 0)
        min_health = self.integer(spec, "minHealthPercent", where, 0)
        if self.integer(spec, "maxEjectionPercent", where, 10) == 0:
            return None  # Envoy: 0% means no host may be ejected
        return OutlierPolicy(
            consecutive_5xx=errors_5xx or None,
            consecutive_gateway=gateway_errors or None,
            consecutive_local_origin=(local_origin or None) if split else None,
            split_local_origin=split,
            # Istio's minHealthPercent is Envoy's panic threshold; each local
            # destination is one address, so any value above 0 means panic
            # (route to it even while ejected) as soon as it is ejected.
            panic=min_health > 0,
            base_ejection_s=self.duration(spec.get("baseEjectionTime"), where, 30.0) or 30.0,
            interval_s=self.duration(spec.get("interval"), where, 10.0) or 10.0,
        )

    def outlier_for(self, routes: list[Route]) -> dict[Destination, OutlierPolicy]:
        result: dict[Destination, OutlierPolicy] = {}
        for route in routes:
            for weighted in route.destinations:
                dest = weighted.destination
                policy = self._outlier.get(dest) or self._host_outlier.get(dest.host)
                if policy is not None:
                    result[dest] = policy
        return result

    # --- VirtualServices ----------------------------------------------------
    def virtual_service(
        self,
        raw_spec: Any,
        where: str,
        gateways: list[str],
        subsets: dict[str, dict[str, Any]],
    ) -> list[Route]:
        spec = self.check(raw_spec, where, _VS_SPEC, _VS_SPEC_NOT_APPLICABLE)
        routes: list[Route] = []
        for index, http in enumerate(spec.get("http") or []):
            route = self.http_route(http, f"{where}.http[{index}]", gateways)
            if route is not None:
                routes.append(route)
        return routes

    def http_route(self, raw: Any, where: str, gateways: list[str]) -> Route | None:
        http = self.check(raw, where, _HTTP_ROUTE)
        raw_matches = http.get("match") or []
        matches: list[MatchRequest] = []
        for index, raw_match in enumerate(raw_matches):
            match = self.match_request(raw_match, f"{where}.match[{index}]", gateways)
            if match is not None:
                matches.append(match)
        if raw_matches and not matches:
            return None  # every match is for other gateways (e.g. only `mesh`)
        destinations = [
            self.route_destination(d, f"{where}.route[{i}]")
            for i, d in enumerate(http.get("route") or [])
        ]
        if not destinations:
            self.errors.append(f"{where}.route: missing (the local gateway needs a destination)")
            return None
        if len(destinations) == 1 and destinations[0].weight == 0:
            destinations[0] = WeightedDestination(destinations[0].destination, 100)
        elif sum(d.weight for d in destinations) == 0:
            # Istio's validateHTTPRouteDestinations: weights that do not add up to
            # 100 are normalised, but several destinations of total weight 0 are refused.
            self.errors.append(f"{where}.route: total destination weight = 0")
            return None
        rewrite = None
        if "rewrite" in http:
            spec = self.check(http["rewrite"], f"{where}.rewrite", _REWRITE)
            rewrite = Rewrite(uri=spec.get("uri"), authority=spec.get("authority"))
        timeout = self.duration(http.get("timeout"), f"{where}.timeout", None)
        fault = (
            parse_fault(http["fault"], f"{where}.fault", self.errors, self.fault_duration)
            if "fault" in http
            else None
        )
        return Route(
            name=str(http.get("name") or where),
            destinations=tuple(destinations),
            matches=tuple(matches),
            rewrite=rewrite,
            timeout_s=timeout or None,
            retry=self.retries(http["retries"], f"{where}.retries")
            if "retries" in http
            else DEFAULT_RETRY_POLICY,
            fault=fault,
        )

    def fault_duration(self, value: Any, where: str) -> float | None:
        return None if value is None else self.duration(value, where, None)

    def match_request(self, raw: Any, where: str, gateways: list[str]) -> MatchRequest | None:
        spec = self.check(raw, where, _MATCH)
        if "gateways" in spec and not binds(spec["gateways"] or [], "", gateways):
            return None
        uri = self.string_match(spec["uri"], f"{where}.uri") if "uri" in spec else None
        headers: list[tuple[str, StringMatch]] = []
        raw_headers = spec.get("headers") or {}
        if not isinstance(raw_headers, Mapping):
            self.errors.append(f"{where}.headers: expected a mapping")
            raw_headers = {}
        for name, value in raw_headers.items():
            header = self.string_match(value, f"{where}.headers.{name}")
            if header is not None:
                headers.append((str(name).lower(), header))
        return MatchRequest(uri=uri, headers=tuple(headers))

    def string_match(self, raw: Any, where: str) -> StringMatch | None:
        spec = self.check(raw, where, _STRING_MATCH)
        kinds = [k for k in ("exact", "prefix") if k in spec]
        if len(kinds) != 1:
            if len(spec) == len(kinds):  # not already reported as unsupported
                self.errors.append(f"{where}: expected exactly one of exact, prefix")
            return None
        value = spec[kinds[0]]
        if not isinstance(value, str):
            self.errors.append(f"{where}.{kinds[0]}: expected a string, got {value!r}")
            return None
        return StringMatch(kinds[0], value)

    def route_destination(self, raw: Any, where: str) -> WeightedDestination:
        spec = self.check(raw, where, _ROUTE_DESTINATION)
        destination = self.check(
            spec.get("destination") or {}, f"{where}.destination", _DESTINATION
        )
        host = short_host(destination.get("host", ""))
        if not host:
            self.errors.append(f"{where}.destination.host: missing")
        subset = destination.get("subset")
        weight = self.integer(spec, "weight", where, 0)
        return WeightedDestination(Destination(host, str(subset) if subset else None), weight)

    def retries(self, raw: Any, where: str) -> RetryPolicy:
        spec = self.check(raw, where, _RETRIES, _RETRIES_NOT_APPLICABLE)
        attempts = self.integer(spec, "attempts", where, 0)
        if attempts == 0:
            return NO_RETRY_POLICY
        conditions, codes, not_applicable, unsupported = parse_retry_on(
            spec.get("retryOn", ISTIO_DEFAULT_RETRY_ON)
        )
        for token in not_applicable:
            self.warnings.append(f"{where}.retryOn: {token} cannot occur locally (HTTP/1.1)")
        for token in unsupported:
            self.errors.append(f"{where}.retryOn: {token} not supported by the local gateway")
        return RetryPolicy(
            attempts=attempts,
            per_try_timeout_s=self.duration(spec.get("perTryTimeout"), where, None) or None,
            retry_on=conditions,
            status_codes=codes,
        )

    def integer(self, spec: Mapping[str, Any], key: str, where: str, default: int) -> int:
        value = spec.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.errors.append(f"{where}.{key}: expected a non-negative integer, got {value!r}")
            return default
        return value

    def duration(self, value: Any, where: str, default: float | None) -> float | None:
        if value is None:
            return default
        try:
            return parse_duration(str(value))
        except ValueError as error:
            self.errors.append(f"{where}: {error}")
            return default
