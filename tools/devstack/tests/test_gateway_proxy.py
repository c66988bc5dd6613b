"""The gateway's proxy I/O against real small HTTP upstreams on loopback."""

from __future__ import annotations

import asyncio
import collections
import sys
from pathlib import Path

import httpx
import pytest
from testkit.devstack import write_istio_dir
from testkit.process import ServiceProcess, free_port


def _vs(http: str) -> str:
    lines = "\n".join("    " + line for line in http.strip("\n").splitlines())
    return (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
        "metadata: {name: svc, namespace: apps}\n"
        "spec:\n  hosts: ['*']\n  gateways: [apps/gw]\n  http:\n" + lines + "\n"
    )


SPLIT = _vs(
    """
- match: [{headers: {x-canary: {exact: v2}}}]
  route: [{destination: {host: svc, subset: v2}}]
- retries: {attempts: 2, perTryTimeout: 300ms, retryOn: "5xx,connect-failure"}
  timeout: 2s
  route:
  - {destination: {host: svc, subset: v1}, weight: 50}
  - {destination: {host: svc, subset: v2}, weight: 50}
"""
)


@pytest.mark.parametrize(
    ("retries", "path"),
    [("{attempts: 2, retryOn: 5xx}", "/fail?x=1"), ("{attempts: 1, retryOn: reset}", "/reset")],
    ids=["5xx", "reset"],
)
async def test_a_failed_try_is_retried_and_the_retry_answer_returned(
    upstreams, gateway, retries: str, path: str
) -> None:
    """The first try fails (a 503; a reset connection) and ``retryOn`` names that failure."""
    one = await upstreams("one")
    one.fail_first = 1
    url = await gateway(
        _vs(f"- retries: {retries}\n  route: [{{destination: {{host: svc}}}}]"), {"svc": one.url}
    )
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}{path}")
    assert response.status_code == 200
    assert response.json()["path"] == path
    assert one.calls[path.partition("?")[0]] == 2
    assert response.headers["x-envoy-upstream-service-time"].isdigit()


async def test_gives_up_after_the_attempts_with_the_last_answer(upstreams, gateway) -> None:
    one = await upstreams("one")
    one.fail_first = 10
    one.fail_status = 502
    url = await gateway(
        _vs(
            "- retries: {attempts: 2, retryOn: gateway-error}\n"
            "  route: [{destination: {host: svc}}]"
        ),
        {"svc": one.url},
    )
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/fail")
    assert response.status_code == 502
    assert response.text == "failing"
    assert one.calls["/fail"] == 3


async def test_connect_failure_is_retried_on_the_other_destination(upstreams, gateway) -> None:
    v1 = await upstreams("v1")
    dead = f"http://127.0.0.1:{free_port()}"
    url = await gateway(SPLIT, {"svc/v1": v1.url, "svc/v2": dead})
    async with httpx.AsyncClient() as client:
        answers = [await client.get(f"{url}/") for _ in range(60)]
    assert {r.status_code for r in answers} == {200}
    assert {r.headers["x-served-by"] for r in answers} == {"v1"}


async def test_connect_failure_without_retries_is_an_envoy_503(gateway) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    url = await gateway(
        _vs("- retries: {attempts: 0}\n  route: [{destination: {host: svc}}]"), {"svc": dead}
    )
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/")
    assert response.status_code == 503
    assert "reset reason: connection failure" in response.text


async def test_per_try_timeout_retries_and_route_timeout_gives_504(upstreams, gateway) -> None:
    one = await upstreams("one")
    one.delay_first_s = 1.0
    url = await gateway(SPLIT, {"svc/v1": one.url, "svc/v2": one.url})
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/slow")
        assert response.status_code == 200
        assert one.calls["/slow"] == 2  # the first try hit the 300 ms per-try timeout

        slow = await upstreams("slow")
        slow.delay_first_s = 1.0
        url2 = await gateway(
            _vs("- timeout: 300ms\n  route: [{destination: {host: svc}}]"), {"svc": slow.url}
        )
        timed_out = await client.get(f"{url2}/slow")
    assert timed_out.status_code == 504
    assert timed_out.text == "upstream request timeout"


async def test_header_match_pins_the_version(upstreams, gateway) -> None:
    v1, v2 = await upstreams("v1"), await upstreams("v2")
    url = await gateway(SPLIT, {"svc/v1": v1.url, "svc/v2": v2.url})
    async with httpx.AsyncClient() as client:
        pinned = [await client.get(f"{url}/", headers={"x-canary": "v2"}) for _ in range(40)]
        split = [await client.get(f"{url}/") for _ in range(200)]
    assert {r.headers["x-served-by"] for r in pinned} == {"v2"}
    counts = collections.Counter(r.headers["x-served-by"] for r in split)
    assert counts["v1"] > 0 and counts["v2"] > 0


async def test_trace_and_other_headers_are_forwarded_untouched(upstreams, gateway) -> None:
    one = await upstreams("one")
    url = await gateway(_vs("- route: [{destination: {host: svc}}]"), {"svc": one.url})
    sent = {
        "x-datadog-trace-id": "1234567890",
        "x-datadog-parent-id": "987",
        "x-datadog-sampling-priority": "1",
        "x-datadog-origin": "synthetics",
        "x-datadog-tags": "_dd.p.dm=-0",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "dd=s:1",
        "b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1",
        "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7",
        "x-request-id": "req-42",
        "x-custom": "kept",
        "authorization": "Bearer t",
    }
    async with httpx.AsyncClient() as client:
        await client.get(f"{url}/", headers=sent)
        received = {k.lower(): v for k, v in one.last_headers.items()}
        assert {k: received.get(k) for k in sent} == sent
        assert received["x-forwarded-for"] == "127.0.0.1"
        assert received["host"] == url.removeprefix("http://")
        await client.get(f"{url}/")
    generated = {k.lower(): v for k, v in one.last_headers.items()}["x-request-id"]
    assert len(generated) == 36


async def test_post_body_and_big_streamed_answer(upstreams, gateway) -> None:
    one = await upstreams("one")
    url = await gateway(_vs("- route: [{destination: {host: svc}}]"), {"svc": one.url})
    async with httpx.AsyncClient() as client:
        posted = await client.post(f"{url}/books", json={"title": "Dune"})
        big = await client.get(f"{url}/big")
    assert posted.json()["body"] == '{"title":"Dune"}'
    assert big.status_code == 200
    assert len(big.content) == 1024 * 1024 + 7
    assert big.headers["x-served-by"] == "one"


async def test_chunked_and_head_answers_pass_through(upstreams, gateway) -> None:
    one = await upstreams("one")
    url = await gateway(_vs("- route: [{destination: {host: svc}}]"), {"svc": one.url})
    async with httpx.AsyncClient() as client:
        chunked = await client.get(f"{url}/chunked")
        head = await client.head(f"{url}/big")
    assert chunked.status_code == 200
    assert chunked.text == "part0;part1;part2;"
    assert chunked.headers["x-served-by"] == "one"
    assert head.status_code == 200
    assert head.headers["content-length"] == str(1024 * 1024 + 7)
    assert head.content == b""


async def test_no_route_is_404(upstreams, gateway) -> None:
    one = await upstreams("one")
    url = await gateway(
        _vs("- match: [{uri: {exact: /only}}]\n  route: [{destination: {host: svc}}]"),
        {"svc": one.url},
    )
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{url}/other")).status_code == 404
        assert (await client.get(f"{url}/only")).status_code == 200


def test_local_gateway_refuses_an_unsupported_field_by_name(tmp_path: Path) -> None:
    directory = write_istio_dir(
        tmp_path / "istio",
        _vs("- mirror: {host: svc}\n  route: [{destination: {host: svc}}]"),
    )
    env = {"GATEWAY_ISTIO_DIR": str(directory), "PORT": str(free_port())}
    with ServiceProcess(["local-gateway"], env) as proc:
        status = proc.wait_exit(timeout=30)
        output = proc.output()
    assert status == 2
    assert "http[0].mirror: not supported by the local gateway" in output
    assert "refusing to start" in output


def test_local_gateway_names_a_destination_without_address(tmp_path: Path) -> None:
    directory = write_istio_dir(tmp_path / "istio", SPLIT)
    env = {
        "GATEWAY_ISTIO_DIR": str(directory),
        "GATEWAY_UPSTREAMS": "svc/v1=http://127.0.0.1:1",
        "PORT": str(free_port()),
    }
    with ServiceProcess(
        [Path(sys.executable).parent.joinpath("local-gateway").as_posix()], env
    ) as proc:
        assert proc.wait_exit(timeout=30) == 2
        assert "no local address for destination svc/v2" in proc.output()


async def test_expect_100_continue_is_answered_by_the_gateway(upstreams, gateway) -> None:
    one = await upstreams("one")
    url = await gateway(_vs("- route: [{destination: {host: svc}}]"), {"svc": one.url})
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /books HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    assert (await reader.readline()).startswith(b"HTTP/1.1 100")
    await reader.readline()
    writer.write(b"abcd")
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200")
    assert b'"body": "abcd"' in answer
    assert "Expect" not in one.last_headers
