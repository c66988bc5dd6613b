"""The gateway's routing model: parsing the Istio YAML, matching, weights, retry policy."""

from __future__ import annotations

import math
import random
import textwrap
from pathlib import Path

import pytest
import yaml
from devstack.gateway.istio import IstioConfigError, build_gateway_config, load_gateway_config
from devstack.gateway.outlier import OutlierDetector, OutlierPolicy
from devstack.gateway.retry import Failure as F
from devstack.gateway.retry import RetryPolicy, backoff_s, parse_retry_on
from devstack.gateway.routing import Destination, rewrite_path
from servicekit.durations import parse_duration
from testkit.devstack import GATEWAY_YAML
from testkit.process import REPO_ROOT

V1 = Destination("text-to-speech", "v1")
V2 = Destination("text-to-speech", "v2")
BOOKS = Destination("books")


def _docs(virtual_service: str) -> list[dict]:
    return [*yaml.safe_load_all(GATEWAY_YAML), yaml.safe_load(textwrap.dedent(virtual_service))]


def _vs(http: str) -> str:
    return (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
        "metadata: {name: svc, namespace: apps}\n"
        "spec:\n  hosts: ['*']\n  gateways: [apps/gw]\n  http:\n" + textwrap.indent(http, "    ")
    )


SIMPLE_ROUTE = "- route: [{destination: {host: svc, subset: v1}}]\n"
ROUTE_LINE = "  " + SIMPLE_ROUTE[2:]


@pytest.fixture(scope="module")
def repo_config():
    return load_gateway_config(REPO_ROOT / "k8s" / "istio")


def test_repo_istio_routes_books_and_the_canary_split(repo_config) -> None:
    table = repo_config.table
    books_route, _ = table.match("127.0.0.1:8000", "/books", {})
    assert [d.destination for d in books_route.destinations] == [BOOKS]
    assert table.match("127.0.0.1:8000", "/books/12", {})[0] is books_route
    for path in ("/", "/speech", "/audio/abc.wav"):
        route, _ = table.match("127.0.0.1:8000", path, {})
        assert {d.destination: d.weight for d in route.destinations} == {V1: 70, V2: 30}
    assert table.match("127.0.0.1:8000", "/nothing-here", {}) is None


def test_repo_istio_x_canary_pins_the_version(repo_config) -> None:
    table = repo_config.table
    for version, destination in (("v1", V1), ("v2", V2)):
        for path in ("/", "/speech", "/audio/x.wav"):
            route, _ = table.match("localhost", path, {"x-canary": version})
            assert [d.destination for d in route.destinations] == [destination]
            assert {route.pick() for _ in range(50)} == {destination}
    route, _ = table.match("localhost", "/", {"x-canary": "v3"})
    assert len(route.destinations) == 2


def test_repo_istio_host_header_selects_the_virtual_service(repo_config) -> None:
    route, _ = repo_config.table.match("books.apps.svc.cluster.local:80", "/books", {})
    assert route.name.startswith("VirtualService apps/books")
    route, _ = repo_config.table.match("203.0.113.9", "/books", {})
    assert route.name.startswith("VirtualService apps/edge")


def test_repo_istio_reports_what_it_does_not_apply_by_name(repo_config) -> None:
    warnings = "\n".join(repo_config.warnings)
    assert "trafficPolicy.connectionPool: not applied" in warnings
    assert "AuthorizationPolicy apps/deny-by-default: not applied" in warnings


def test_weighted_pick_follows_the_cumulative_weights(repo_config) -> None:
    route, _ = repo_config.table.match("x", "/", {})
    assert route.pick(rand=lambda: 0.0) == V1
    assert route.pick(rand=lambda: 0.699) == V1
    assert route.pick(rand=lambda: 0.701) == V2
    assert route.pick(rand=lambda: 0.999999) == V2


def test_weighted_pick_is_binomial_over_many_requests(repo_config) -> None:
    route, _ = repo_config.table.match("x", "/", {})
    n = 20_000
    rng = random.Random(7)
    share = sum(route.pick(rand=rng.random) == V2 for _ in range(n))
    sigma = math.sqrt(n * 0.3 * 0.7)
    assert abs(share - 0.3 * n) < 4 * sigma


def test_pick_avoids_failed_destinations_unless_all_failed(repo_config) -> None:
    route, _ = repo_config.table.match("x", "/", {})
    assert {route.pick(avoid={V2}) for _ in range(100)} == {V1}
    assert {route.pick(avoid={V1}) for _ in range(100)} == {V2}
    assert {route.pick(avoid={V1, V2}) for _ in range(300)} == {V1, V2}


def test_matches_are_ored_and_conditions_anded() -> None:
    config = build_gateway_config(
        _docs(
            _vs(
                "- match:\n"
                "  - {uri: {exact: /a}, headers: {x-k: {exact: 'yes'}}}\n"
                "  - {uri: {prefix: /b}}\n"
                "  route: [{destination: {host: svc, subset: v2}}]\n" + SIMPLE_ROUTE
            )
        )
    )
    table = config.table

    def served(path: str, headers: dict[str, str]) -> str | None:
        route, _ = table.match("h", path, headers)
        return route.destinations[0].destination.subset

    assert served("/a", {"x-k": "yes"}) == "v2"
    assert served("/a", {"x-k": "no"}) == "v1"
    assert served("/a/deeper", {"x-k": "yes"}) == "v1"  # exact
    assert served("/bcd", {}) == "v2"  # prefix is a plain string prefix, as in Envoy
    assert served("/c", {}) == "v1"  # the catch-all route


def test_rewrite_replaces_the_matched_prefix() -> None:
    config = build_gateway_config(
        _docs(
            _vs(
                "- match: [{uri: {prefix: /api/}}]\n"
                "  rewrite: {uri: /}\n"
                "  route: [{destination: {host: svc, subset: v1}}]\n"
            )
        )
    )
    route, match = config.table.match("h", "/api/books", {})
    assert rewrite_path("/api/books", "q=1", match, route.rewrite) == "/books?q=1"
    assert rewrite_path("/x", "", match, None) == "/x"


def test_timeout_and_retries_are_read() -> None:
    config = build_gateway_config(
        _docs(
            _vs(
                "- timeout: 1.5s\n"
                "  retries: {attempts: 4, perTryTimeout: 250ms, retryOn: '5xx,reset,409'}\n"
                "  route: [{destination: {host: svc, subset: v1}}]\n"
            )
        )
    )
    route = config.table.routes[0]
    assert route.timeout_s == 1.5
    assert route.retry == RetryPolicy(4, 0.25, frozenset({"5xx", "reset"}), frozenset({409}))


def test_no_retries_declared_means_istio_default() -> None:
    route = build_gateway_config(_docs(_vs(SIMPLE_ROUTE))).table.routes[0]
    assert route.retry.attempts == 2
    assert route.retry.retries_failure(F.CONNECT_FAILURE)
    assert not route.retry.retries_status(503)
    assert route.timeout_s is None


@pytest.mark.parametrize(
    ("http", "named"),
    [
        (
            "- fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 5}}}\n" + ROUTE_LINE,
            "http[0].fault.abort.grpcStatus: not supported",
        ),
        ("- mirror: {host: svc}\n" + ROUTE_LINE, "http[0].mirror"),
        (
            "- match: [{uri: {regex: '/a.*'}}]\n" + ROUTE_LINE,
            "http[0].match[0].uri.regex",
        ),
        (
            "- match: [{headers: {x-a: {regex: 'b.*'}}}]\n" + ROUTE_LINE,
            "http[0].match[0].headers.x-a.regex",
        ),
        (
            "- match: [{queryParams: {a: {exact: b}}}]\n" + ROUTE_LINE,
            "http[0].match[0].queryParams",
        ),
        (
            "- retries: {attempts: 2, retryOn: retriable-4xx}\n" + ROUTE_LINE,
            "retryOn: retriable-4xx",
        ),
        (
            "- route: [{destination: {host: svc, subset: v1}, headers: {request: {}}}]\n",
            "route[0].headers",
        ),
        ("- corsPolicy: {}\n" + ROUTE_LINE, "http[0].corsPolicy"),
    ],
)
def test_unsupported_field_is_reported_by_name(http: str, named: str) -> None:
    with pytest.raises(IstioConfigError) as raised:
        build_gateway_config(_docs(_vs(http)))
    assert any(named in problem for problem in raised.value.problems), raised.value.problems


def test_unknown_subset_and_missing_gateway_are_errors() -> None:
    with pytest.raises(IstioConfigError, match="subset 'v9'"):
        build_gateway_config(_docs(_vs("- route: [{destination: {host: svc, subset: v9}}]\n")))
    with pytest.raises(IstioConfigError, match="no Gateway"):
        build_gateway_config(_docs(_vs(SIMPLE_ROUTE))[1:])


def test_virtual_service_bound_only_to_mesh_is_not_served() -> None:
    docs = _docs(_vs(SIMPLE_ROUTE))
    docs[-1]["spec"]["gateways"] = ["mesh"]
    with pytest.raises(IstioConfigError, match="no VirtualService"):
        build_gateway_config(docs)


def test_retry_on_semantics_follow_envoy() -> None:
    def policy(retry_on: str) -> RetryPolicy:
        conditions, codes, _, unsupported = parse_retry_on(retry_on)
        assert not unsupported
        return RetryPolicy(3, None, conditions, codes)

    five = policy("5xx")
    assert five.retries_status(500) and five.retries_status(503)
    assert not five.retries_status(404)
    assert all(five.retries_failure(f) for f in F)
    gateway = policy("gateway-error")
    assert gateway.retries_status(502) and gateway.retries_status(504)
    assert not gateway.retries_status(500)
    assert all(gateway.retries_failure(f) for f in F)
    connect = policy("connect-failure")
    assert connect.retries_failure(F.CONNECT_FAILURE)
    assert not connect.retries_failure(F.RESET)
    assert not connect.retries_status(503)
    reset = policy("reset")
    assert all(reset.retries_failure(f) for f in F)
    assert not reset.retries_status(503)
    codes = policy("409")
    assert codes.retries_status(409) and not codes.retries_status(500)
    # reset-before-request: any no-answer failure, but only while nothing was sent.
    before = policy("reset-before-request")
    assert all(before.retries_failure(f, request_started=False) for f in F)
    assert not any(before.retries_failure(f, request_started=True) for f in F)
    assert not any(before.retries_failure(f) for f in F)  # unknown: assume sent
    assert not before.retries_status(503)
    books = policy("connect-failure,refused-stream,reset-before-request")
    assert books.retries_failure(F.CONNECT_FAILURE, request_started=True)
    assert not books.retries_failure(F.RESET, request_started=True)
    assert not books.retries_failure(F.PER_TRY_TIMEOUT, request_started=True)
    assert parse_retry_on("5xx,refused-stream,bogus")[2:] == (["refused-stream"], ["bogus"])


def test_backoff_is_jittered_and_capped() -> None:
    rng = random.Random(1)
    assert all(0 <= backoff_s(1, rng) <= 0.025 for _ in range(100))
    assert all(0 <= backoff_s(10, rng) <= 0.25 for _ in range(100))


def test_outlier_detection_ejects_after_consecutive_errors_and_releases() -> None:
    now = [100.0]
    detector = OutlierDetector({V2: OutlierPolicy(consecutive_5xx=3, base_ejection_s=2.0)})
    detector.clock = lambda: now[0]
    assert not detector.record_failure(V2)
    assert not detector.record_status(V2, 503)
    assert not detector.record_status(V2, 200)  # a success resets the count
    assert not detector.record_status(V2, 500)
    assert not detector.record_failure(V2)
    assert detector.record_status(V2, 502)
    assert detector.ejected() == {V2}
    now[0] += 2.01
    assert detector.ejected() == set()
    for _ in range(3):
        detector.record_failure(V2)
    now[0] += 2.01
    assert detector.ejected() == {V2}  # second ejection lasts twice as long
    now[0] += 2.0
    assert detector.ejected() == set()
    assert not detector.record_failure(V1)  # no policy for v1: never ejected


def test_outlier_ejection_multiplier_decays_while_healthy() -> None:
    now = [0.0]
    policy = OutlierPolicy(consecutive_5xx=1, base_ejection_s=2.0, interval_s=10.0)
    detector = OutlierDetector({V2: policy}, clock=lambda: now[0])
    assert detector.record_failure(V2)  # ejected 2 s
    now[0] = 2.5
    assert detector.record_failure(V2)  # second ejection: 4 s, until 6.5
    now[0] = 6.6
    assert detector.ejected() == set()
    now[0] = 6.5 + 10 + 0.1  # one healthy interval: two ejections -> one
    assert detector.record_failure(V2)  # so this one lasts 2 x 2 s
    now[0] += 3.0
    assert detector.ejected() == {V2}
    now[0] += 1.0 + 20.0  # two healthy intervals: no ejection remembered
    assert detector.record_failure(V2)
    now[0] += 2.01
    assert detector.ejected() == set()  # 2 s again


def test_outlier_policy_read_from_destination_rule(repo_config) -> None:
    for destination in (V1, V2, BOOKS):
        policy = repo_config.outlier[destination]
        # Only connection failures count: the fronts' 503 + Retry-After never ejects.
        assert policy.split_local_origin
        assert policy.consecutive_local_origin == 5
        assert policy.consecutive_5xx is None and policy.consecutive_gateway is None
        assert not policy.panic
        assert policy.base_ejection_s == 30.0
        assert policy.interval_s == 10.0


def test_outlier_with_split_local_origin_counts_only_connection_failures() -> None:
    policy = OutlierPolicy(
        consecutive_5xx=None, consecutive_local_origin=3, split_local_origin=True
    )
    detector = OutlierDetector({V2: policy}, clock=lambda: 0.0)
    assert not any(detector.record_status(V2, 503) for _ in range(50))
    assert not detector.record_failure(V2)
    assert not detector.record_failure(V2)
    assert not detector.record_status(V2, 503)  # an answer ends the run of failures
    assert not detector.record_failure(V2)
    assert not detector.record_failure(V2)
    assert detector.record_failure(V2)
    assert detector.ejected() == {V2}


def test_outlier_without_split_counts_failures_as_5xx_and_local_origin_is_ignored() -> None:
    # Istio passes consecutiveLocalOriginFailures only with the split.
    docs = _docs(_vs(SIMPLE_ROUTE))
    docs.append(
        yaml.safe_load(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
            "metadata: {name: svc, namespace: apps}\n"
            "spec:\n  host: svc\n  subsets: [{name: v1, labels: {version: v1}}]\n"
            "  trafficPolicy:\n    outlierDetection:\n"
            "      consecutiveLocalOriginFailures: 2\n      minHealthPercent: 50\n"
        )
    )
    config = build_gateway_config(docs)
    (policy,) = config.outlier.values()
    assert policy.consecutive_5xx == 5  # Envoy's default when unset
    assert policy.consecutive_local_origin is None and not policy.split_local_origin
    assert policy.panic
    detector = OutlierDetector(dict(config.outlier), clock=lambda: 0.0)
    (destination,) = config.outlier
    assert not any(detector.record_status(destination, 503) for _ in range(4))
    assert detector.record_failure(destination)  # fifth error in a row


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10.0), ("250ms", 0.25), ("1m30s", 90.0), ("1.5s", 1.5), ("2h", 7200.0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "s", "10 s", "1x", "-1s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_load_reports_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(IstioConfigError, match="does not exist"):
        load_gateway_config(tmp_path / "nope")
