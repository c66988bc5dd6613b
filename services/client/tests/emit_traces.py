"""Sends real ddtrace spans to an agent, as the text-to-speech fronts would.

Run as a process with DD_SERVICE=text-to-speech, DD_VERSION=v1|v2 and
DD_TRACE_AGENT_URL set: ``python emit_traces.py --plan JSON [--under-gateway]``
(the plan: see ``traffic.py``; batches of other versions are skipped). Each
request is a ``web`` entry span of the service with a child span (like the
gRPC call to the backend). ``--under-gateway`` makes every entry span the
child of a span of another service, as a tracing gateway would. Also sends one
/healthz span and one span of the books service, which a comparison must leave
out.
"""

from __future__ import annotations

import argparse
import os

from ddtrace.trace import Context, tracer
from traffic import loads, requests


def request_span(resource: str, duration_s: float, error: bool, parent: Context | None) -> None:
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
    child = tracer.trace("grpc.client", resource="/tts.v1.TextToSpeech/Synthesize")
    child.finish(finish_time=child.start + duration_s * 0.8)
    if error:
        span.error = 1
        span.set_tag("http.status_code", "500")
    span.finish(finish_time=span.start + duration_s)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plan", required=True)
    parser.add_argument("--under-gateway", action="store_true")
    args = parser.parse_args()
    for batch in loads(args.plan):
        if batch.version != os.environ["DD_VERSION"]:
            continue
        for duration_s, error in requests(batch):
            if args.under_gateway:
                gateway = tracer.start_span("gateway.request", service="local-gateway")
                remote = Context(trace_id=gateway.trace_id, span_id=gateway.span_id)
                request_span(batch.resource, duration_s, error, remote)
                gateway.finish(finish_time=gateway.start + duration_s * 1.1)
            else:
                request_span(batch.resource, duration_s, error, None)
    request_span("GET /healthz", 0.0001, False, None)
    other = tracer.trace("litestar.request", service="books", resource="GET /books")
    other.finish()
    tracer.flush()
    tracer.shutdown()


if __name__ == "__main__":
    main()
