"""A local stand-in for Datadog's Search spans API, for `client compare --datadog`.

``python fake_datadog.py --port P --plan JSON --t0 EPOCH_S --api-key K --app-key A
[--rate-limit N] [--max-page M] [--sampled N] [--probes N] [--broken MODE]``. Serves only
what the client uses, with the request and response shapes of the API reference
(https://docs.datadoghq.com/api/latest/spans/#search-spans):

``POST /api/v2/spans/events/search`` with headers ``DD-API-KEY`` and
``DD-APPLICATION-KEY`` and the body::

    {"data": {"type": "search_request", "attributes": {
        "filter": {"from": "now-1800s", "to": "now", "query": "service:x env:y"},
        "page": {"limit": 1000, "cursor": "..."}, "sort": "timestamp"}}}

answers ``{"data": [Span], "links": {"next": URL}, "meta": {"elapsed",
"page": {"after": cursor}, "request_id", "status": "done"}}``, a Span being
``{"id", "type": "spans", "attributes": {"service", "env", "resource_name",
"span_id", "parent_id", "trace_id", "start_timestamp", "end_timestamp",
"tags": ["env:...", "version:...", ...], "type", "custom": {}}}``. The last
page has no ``meta.page.after``. Query terms understood: ``service:``,
``env:``, ``status:error``, ``@_top_level:1`` (service entry spans),
``version:(a OR b)``; anything else is a 400, as is a malformed body. Times:
``now``, ``now-N[smhd]`` and ISO 8601 (``2026-12-07T16:00:00.000Z``).

Wrong keys: 403 ``{"errors": ["Forbidden"]}``. ``--rate-limit N``: the first N
requests get 429 with the documented ``X-RateLimit-Limit``, ``-Period``,
``-Remaining``, ``-Reset`` (seconds until the window resets) and ``-Name``
headers. ``--max-page M`` serves at most M spans a page (less than the asked
limit, as any page may be), so pagination is exercised with few spans.
``--probes N``: N probe spans per version (``traffic.probes``, their user agent
in ``custom.http.useragent``). ``--sampled N``: the first N entry spans are ``retained_by``
``diversity_sampling`` (the others ``retention_filter``). ``--broken MODE``
answers every search with something that is not the documented shape:
``html`` (an HTML page), ``text`` (malformed JSON), ``nope``
(``{"data": "nope"}``), ``loop`` (a valid page whose ``meta.page.after`` is
always the same cursor), ``endless`` (a new cursor on every page, forever).
``GET /fake/requests`` lists the answers given (for the tests' asserts).

The spans come from a traffic plan (``traffic.py``), at the plan's times from
``--t0``: each request of text-to-speech is an entry span (child of a gateway
span of another service, which the query leaves out) with an inner
``grpc.client`` span of the same service; the entry span carries the HTTP
status in ``custom.http.status_code``; a retried request has a 503 attempt
first, in the same trace.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from traffic import RETRY_GAP_S, loads, probes, requests

SEARCH_PATH = "/api/v2/spans/events/search"
SERVICE = "text-to-speech"
_NOW = re.compile(r"^now(?:-(\d+)([smhd]))?$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_TERM = re.compile(r"^(service|env|status|@_top_level|version):(\S+|\([^)]*\))$")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_spans(
    plan_json: str, env: str, t0: float, sampled: int, probe_count: int = 0
) -> list[dict[str, Any]]:
    """The plan as indexed Datadog spans, with ``error`` and ``top`` flags only the fake sees."""
    spans: list[dict[str, Any]] = []
    start = datetime.fromtimestamp(t0, UTC)
    counter = 0
    plan = loads(plan_json)
    for version in sorted({batch.version for batch in plan}):
        for probe in probes(probe_count):
            counter += 1
            moment = start + timedelta(seconds=probe.start_s)
            spans.append(
                {
                    "service": SERVICE,
                    "env": env,
                    "trace_id": f"{counter:032x}",
                    "tags": [f"env:{env}", f"version:{version}", f"service:{SERVICE}"],
                    "resource_name": probe.resource,
                    "span_id": f"{counter * 4 + 2}",
                    "parent_id": "0",
                    "type": "web",
                    "start_timestamp": moment,
                    "end_timestamp": moment + timedelta(seconds=0.0005),
                    "custom": {"http": {"status_code": "200", "useragent": probe.user_agent}},
                    "retained_by": "retention_filter",
                    "error": False,
                    "top": True,
                }
            )
    for batch in plan:
        for request in requests(batch):
            counter += 1
            trace_id, gateway_id = f"{counter:032x}", f"{counter * 4 + 1}"
            tags = [f"env:{env}", f"version:{batch.version}", f"service:{SERVICE}"]
            common = {"service": SERVICE, "env": env, "trace_id": trace_id, "tags": tags}
            begin = start + timedelta(seconds=request.start_s)
            attempts = [(begin, request.duration_s, request.status, f"{counter * 4 + 2}")]
            if request.retried:
                attempts = [
                    (begin, request.duration_s / 2, 503, f"{counter * 4 + 3}"),
                    (begin + timedelta(seconds=RETRY_GAP_S), *attempts[0][1:]),
                ]
            for moment, duration, status, entry_id in attempts:
                entries = sum(1 for s in spans if s["top"])
                spans.append(
                    {
                        **common,
                        "resource_name": batch.resource,
                        "span_id": entry_id,
                        "parent_id": gateway_id,
                        "type": "web",
                        "start_timestamp": moment,
                        "end_timestamp": moment + timedelta(seconds=duration),
                        "custom": {"http": {"status_code": str(status)}},
                        "retained_by": (
                            "diversity_sampling" if entries < sampled else "retention_filter"
                        ),
                        "error": status >= 500,
                        "top": True,
                    }
                )
                spans.append(
                    {
                        **common,
                        "resource_name": "/tts.v1.TextToSpeech/Synthesize",
                        "span_id": f"{entry_id}0",
                        "parent_id": entry_id,
                        "type": "grpc",
                        "start_timestamp": moment,
                        "end_timestamp": moment + timedelta(seconds=duration * 0.8),
                        "custom": {},
                        "retained_by": "retention_filter",
                        "error": False,
                        "top": False,
                    }
                )
    return spans


class BadRequest(Exception):
    pass


def _moment(text: Any, now: datetime) -> datetime:
    match = _NOW.match(str(text))
    if not match:
        try:
            return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest(
                f"unsupported time {text!r} (this fake knows now, now-N[smhd] and ISO 8601)"
            ) from None
    amount = int(match.group(1) or 0) * _UNIT[match.group(2) or "s"]
    return now - timedelta(seconds=amount)


def _matches(span: dict[str, Any], terms: list[tuple[str, str]]) -> bool:
    for key, value in terms:
        if key == "service" and span["service"] != value:
            return False
        if key == "env" and span["env"] != value:
            return False
        if key == "status" and (value != "error") == span["error"]:
            return False
        if key == "@_top_level" and (value == "1") != span["top"]:
            return False
        if key == "version":
            versions = value.removeprefix("(").removesuffix(")").split(" OR ")
            if not any(f"version:{v}" in span["tags"] for v in versions):
                return False
    return True


class FakeDatadog:
    def __init__(self, spans: list[dict[str, Any]], args: argparse.Namespace) -> None:
        self.spans = spans
        self.args = args
        self.rate_limited_left = args.rate_limit
        self.answers: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def search(self, headers: Any, body: Any, base_url: str) -> tuple[int, dict[str, str], Any]:
        if (
            headers.get("DD-API-KEY") != self.args.api_key
            or headers.get("DD-APPLICATION-KEY") != self.args.app_key
        ):
            return 403, {}, {"errors": ["Forbidden"]}
        with self.lock:
            if self.rate_limited_left > 0:
                self.rate_limited_left -= 1
                return (
                    429,
                    {
                        "X-RateLimit-Limit": "300",
                        "X-RateLimit-Period": "3600",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": "1",
                        "X-RateLimit-Name": "spans_search",
                    },
                    {"errors": ["Too many requests"]},
                )
        try:
            data = body["data"]
            if data.get("type") != "search_request":
                raise BadRequest("data.type must be search_request")
            attributes = data.get("attributes", {})
            filter_ = attributes.get("filter", {})
            now = datetime.now(UTC)
            since = _moment(filter_.get("from", "now-15m"), now)
            until = _moment(filter_.get("to", "now"), now)
            terms = []
            for word in re.findall(r"\S+:\([^)]*\)|\S+", str(filter_.get("query", "*"))):
                match = _TERM.match(word)
                if not match:
                    raise BadRequest(f"query term {word!r} unknown to this fake")
                terms.append((match.group(1), match.group(2)))
            page = attributes.get("page", {})
            limit = int(page.get("limit", 10))
            if not 1 <= limit <= 1000:
                raise BadRequest("page.limit must be 1 to 1000")
            offset = int(base64.b64decode(page["cursor"]).decode()) if "cursor" in page else 0
            sort = attributes.get("sort", "timestamp")
            if sort not in ("timestamp", "-timestamp"):
                raise BadRequest("sort must be timestamp or -timestamp")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return 400, {}, {"errors": [f"malformed request: {exc}"]}
        except BadRequest as exc:
            return 400, {}, {"errors": [str(exc)]}
        found = [
            s for s in self.spans if since <= s["start_timestamp"] <= until and _matches(s, terms)
        ]
        found.sort(key=lambda s: s["start_timestamp"], reverse=sort == "-timestamp")
        broken = self.args.broken
        if broken in ("html", "text", "nope"):
            return 200, {"broken": broken}, None
        if broken in ("loop", "endless"):
            turn = offset + 1 if broken == "endless" else 1
            cursor = base64.b64encode(str(turn).encode()).decode()
            chunk = [_public(s) for s in found[:1]]
            return 200, {}, {"data": chunk, "meta": {"page": {"after": cursor}}}
        size = min(limit, self.args.max_page)
        chunk = found[offset : offset + size]
        meta: dict[str, Any] = {
            "elapsed": 1,
            "request_id": uuid.uuid4().hex,
            "status": "done",
        }
        answer: dict[str, Any] = {"data": [_public(s) for s in chunk], "meta": meta}
        if offset + size < len(found):
            cursor = base64.b64encode(str(offset + size).encode()).decode()
            meta["page"] = {"after": cursor}
            answer["links"] = {"next": f"{base_url}{SEARCH_PATH}?page[cursor]={cursor}"}
        return 200, {}, answer


def _public(span: dict[str, Any]) -> dict[str, Any]:
    attributes = {k: v for k, v in span.items() if k not in ("error", "top")}
    attributes["start_timestamp"] = _iso(span["start_timestamp"])
    attributes["end_timestamp"] = _iso(span["end_timestamp"])
    return {"id": span["span_id"], "type": "spans", "attributes": attributes}


def serve(args: argparse.Namespace) -> None:
    fake = FakeDatadog(build_spans(args.plan, args.env, args.t0, args.sampled, args.probes), args)

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, headers: dict[str, str], body: Any) -> None:
            broken = headers.pop("broken", None)
            kind = "application/json"
            if broken == "html":
                payload, kind = b"<html><body><h1>Sign in</h1></body></html>", "text/html"
            elif broken == "text":
                payload = b'{"data": [{"id": '
            elif broken == "nope":
                payload = b'{"data": "nope"}'
            else:
                payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            if self.path != SEARCH_PATH:
                self._send(404, {}, {"errors": ["Not found"]})
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"null")
            except ValueError:
                body = None
            host = self.headers.get("Host", "")
            status, headers, answer = fake.search(self.headers, body, f"http://{host}")
            with fake.lock:
                fake.answers.append({"status": status, "body": body})
            self._send(status, headers, answer)

        def do_GET(self) -> None:
            if self.path == "/fake/requests":
                with fake.lock:
                    self._send(200, {}, fake.answers)
            else:
                self._send(404, {}, {"errors": ["Not found"]})

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"fake datadog listening on {args.port}", flush=True)
    server.serve_forever(poll_interval=0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--env", default="test")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--app-key", required=True)
    parser.add_argument("--rate-limit", type=int, default=0)
    parser.add_argument("--max-page", type=int, default=1000)
    parser.add_argument("--t0", type=float, required=True)
    parser.add_argument("--sampled", type=int, default=0)
    parser.add_argument("--probes", type=int, default=0)
    parser.add_argument("--broken", choices=("html", "text", "nope", "loop", "endless"))
    serve(parser.parse_args())


if __name__ == "__main__":
    main()
