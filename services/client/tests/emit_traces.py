"""Sends real ddtrace spans to an agent, as the text-to-speech fronts would.

Run as a process with DD_SERVICE=text-to-speech, DD_VERSION=v1|v2 and
DD_TRACE_AGENT_URL set: ``python emit_traces.py --plan JSON --t0 EPOCH_S
[--under-gateway] [--probes N]`` (the plan: see ``traffic.py``; batches of other
versions are skipped). Each request is a ``web`` entry span of the service, started at
the plan's time, tagged ``http.status_code`` (5xx marked as errors, as the
fronts do), with a child span (like the gRPC call to the backend).
``--under-gateway`` makes every entry span the child of a span of another
service, as a tracing gateway would; a retried request is always under one,
with its 503 attempt and its answer as two entry spans of the trace. Also
sends one /healthz span, ``--probes N`` probe spans (``traffic.probes``: tagged
``http.useragent``) and one span of the books service, which a comparison must
leave out.
"""

from __future__ import annotations

import argparse
import os

from ddtrace.trace import Context, tracer
from traffic import RETRY_GAP_S, Request, loads, probes, requests


def request_span(
    resource: str,
    start_s: float,
    duration_s: float,
    status: int,
    parent: Context | None,
    user_agent: str = "",
) -> None:
    # A front continuing a gateway's trace starts a local root whose parent is
    # remote: that is the span ddtrace tags with DD_VERSION.
    span = tracer.start_span(
        "litestar.request",
        child_of=parent,
        service=os.environ["DD_SERVICE"],
        resource=resource,
        span_type="web",
        activate=True,
    )
    span.start = start_s
    child = tracer.trace("grpc.client", resource="/tts.v1.TextToSpeech/Synthesize")
    child.start = start_s
    child.finish(finish_time=start_s + duration_s * 0.8)
    span.set_tag("http.status_code", str(status))
    if user_agent:
        span.set_tag("http.useragent", user_agent)
    if status >= 500:
        span.error = 1
    span.finish(finish_time=start_s + duration_s)


def send(resource: str, t0: float, request: Request, under_gateway: bool) -> None:
    begin = t0 + request.start_s
    if not (under_gateway or request.retried):
        request_span(resource, begin, request.duration_s, request.status, None)
        return
    gateway = tracer.start_span("gateway.request", service="local-gateway")
    gateway.start = begin
    remote = Context(trace_id=gateway.trace_id, span_id=gateway.span_id)
    answer_at = begin
    if request.retried:
        request_span(resource, begin, request.duration_s / 2, 503, remote)
        answer_at = begin + RETRY_GAP_S
    request_span(resource, answer_at, request.duration_s, request.status, remote)
    gateway.finish(finish_time=answer_at + request.duration_s * 1.1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plan", required=True)
    parser.add_argument("--t0", type=float, required=True)
    parser.add_argument("--under-gateway", action="store_true")
    parser.add_argument("--probes", type=int, default=0)
    args = parser.parse_args()
    for batch in loads(args.plan):
        if batch.version != os.environ["DD_VERSION"]:
            continue
        for request in requests(batch):
            send(batch.resource, args.t0, request, args.under_gateway)
    request_span("GET /healthz", args.t0, 0.0001, 200, None)
    for probe in probes(args.probes):
        request_span(probe.resource, args.t0 + probe.start_s, 0.0005, 200, None, probe.user_agent)
    other = tracer.trace("litestar.request", service="books", resource="GET /books")
    other.finish()
    tracer.flush()
    tracer.shutdown()


if __name__ == "__main__":
    main()
