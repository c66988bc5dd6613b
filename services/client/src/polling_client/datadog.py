"""Reads the text-to-speech entry spans from Datadog's API (``client compare --datadog``).

Search spans (``POST /api/v2/spans/events/search``,
``SpansApi.list_spans_with_pagination`` of the official ``datadog-api-client``),
because the verdict needs one duration per request, which the aggregate
endpoints do not give: docs/decisions/0001-datadog-search-spans.md.

What it asks for: only service entry spans (``@_top_level:1``) of the
service, the env if given and the two versions compared
(``version:(v1 OR v2)``), between two absolute timestamps fixed once (the
query window, :mod:`polling_client.window`), the same for both queries.

Fields used, all documented on the Span model: ``attributes.service``,
``span_id``, ``parent_id``, ``trace_id``, ``resource_name``,
``start_timestamp``/``end_timestamp`` (duration and window), ``env``, ``tags``
(``version:v2``), ``retained_by`` (spans kept by diversity or flat sampling
rather than a retention filter are left out: they are not every request) and
``custom`` (the ``http.status_code`` the tracer set, and ``http.useragent``,
``http.route``, ``http.url``, which tell a probe). Errors: the Span model
has no documented error flag, so the error spans are a second query with the
documented search term ``status:error``; a span is an error when its
``span_id`` is in that set (it counts as a 5xx when the span has no status).

Pages: the code follows ``meta.page.after`` itself, and stops with one line
when a cursor comes back a second time or after ``MAX_PAGES`` pages
(``MAX_PAGES`` x 1000 spans; the endpoint allows 300 requests an hour). An
answer that is not the documented shape (not JSON, an HTML page, ``data``
not a list of spans) is one line too, never a traceback.

Rate limits (429 with ``X-RateLimit-Limit/-Period/-Remaining/-Reset``): the
official client retries, waiting ``X-RateLimit-Reset`` seconds
(``Configuration(enable_retry=True)`` with its ``ClientRetry`` policy, up to
5 times; ``retry_policy`` came in datadog-api-client 2.46.0, the floor in
pyproject.toml: the Search spans models, ``retained_by`` and ``ClientRetry`` are
older). Auth failures (401/403) are one line
and exit status 2 (a configuration problem, like a bad flag).

Where it connects: ``https://api.$DD_SITE`` (DD_SITE read by the client's
``Configuration``, default ``datadoghq.com``), or any URL given with
``--datadog-url`` / ``DATADOG_API_URL`` (the ``host`` of the Configuration):
how the tests point it at a local fake.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from polling_client.errors import ClientError, ConfigError
from polling_client.window import iso

PAGE_LIMIT = 1000  # the largest page the Search spans endpoint serves
MAX_PAGES = 50  # per query: 50,000 spans; the endpoint allows 300 requests an hour
MAX_RETRIES = 5
ENTRY_SPANS = "@_top_level:1"  # Datadog's search term for service entry spans
# The sites the client's Configuration accepts for DD_SITE (server 0's enum).
SITES = (
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "ap1.datadoghq.com",
    "ap2.datadoghq.com",
    "uk1.datadoghq.com",
    "datadoghq.eu",
    "ddog-gov.com",
    "us2.ddog-gov.com",
)


@dataclass(frozen=True)
class DatadogQuery:
    service: str
    env: str | None
    versions: tuple[str, ...]
    start_ns: int  # the query window, absolute, the same for every query
    end_ns: int
    api_url: str | None  # None: https://api.$DD_SITE
    timeout_s: float


def describe(query: DatadogQuery) -> str:
    where = query.api_url or f"https://api.{os.environ.get('DD_SITE') or 'datadoghq.com'}"
    return f"Datadog ({where})"


def search_query(query: DatadogQuery, extra: str = "") -> str:
    terms = [f"service:{query.service}", ENTRY_SPANS]
    if query.env:
        terms.append(f"env:{query.env}")
    if query.versions:
        terms.append(f"version:({' OR '.join(query.versions)})")
    if extra:
        terms.append(extra)
    return " ".join(terms)


class _Malformed(Exception):
    """An answer that is not the documented Search spans shape."""


def _check_environment(query: DatadogQuery) -> None:
    missing = [name for name in ("DD_API_KEY", "DD_APP_KEY") if not os.environ.get(name)]
    if missing:
        raise ConfigError(
            f"--datadog needs {' and '.join(missing)} in the environment"
            " (an API key and an application key with the apm_read scope)"
        )
    site = os.environ.get("DD_SITE")
    if query.api_url is None and site and site not in SITES:
        raise ConfigError(f"DD_SITE={site!r} is not a Datadog site: one of {', '.join(SITES)}")


def fetch_datadog_traces(query: DatadogQuery) -> list[list[dict[str, Any]]]:
    """Entry-span candidates from Datadog, in the test agent's trace shape."""
    _check_environment(query)
    # Imported here: the client package is large and only --datadog needs it.
    from datadog_api_client import ApiClient, Configuration
    from datadog_api_client.exceptions import ApiException, OpenApiException
    from datadog_api_client.rest import ClientRetry
    from datadog_api_client.v2.api.spans_api import SpansApi
    from datadog_api_client.v2.model.spans_list_request import SpansListRequest
    from datadog_api_client.v2.model.spans_list_request_attributes import (
        SpansListRequestAttributes,
    )
    from datadog_api_client.v2.model.spans_list_request_data import SpansListRequestData
    from datadog_api_client.v2.model.spans_list_request_page import SpansListRequestPage
    from datadog_api_client.v2.model.spans_list_request_type import SpansListRequestType
    from datadog_api_client.v2.model.spans_query_filter import SpansQueryFilter
    from datadog_api_client.v2.model.spans_sort import SpansSort
    from urllib3.exceptions import HTTPError, ResponseError

    # The client's own retry policy (waits X-RateLimit-Reset seconds on a 429),
    # with one retry only for a refused connection or a read timeout.
    retry = ClientRetry(
        total=MAX_RETRIES, connect=1, read=1, status=MAX_RETRIES, backoff_factor=0.5
    )
    configuration = Configuration(  # type: ignore[no-untyped-call]
        host=query.api_url,
        enable_retry=True,
        max_retries=MAX_RETRIES,
        retry_policy=retry,
        request_timeout=query.timeout_s,
    )

    def request(search: str, cursor: str | None) -> SpansListRequest:
        page = (
            SpansListRequestPage(limit=PAGE_LIMIT)
            if cursor is None
            else SpansListRequestPage(limit=PAGE_LIMIT, cursor=cursor)
        )
        return SpansListRequest(
            data=SpansListRequestData(
                attributes=SpansListRequestAttributes(
                    filter=SpansQueryFilter(
                        _from=iso(query.start_ns), to=iso(query.end_ns), query=search
                    ),
                    page=page,
                    sort=SpansSort.TIMESTAMP_ASCENDING,
                ),
                type=SpansListRequestType.SEARCH_REQUEST,
            )
        )

    def every_page(api: SpansApi, search: str) -> list[dict[str, Any]]:
        spans: list[dict[str, Any]] = []
        seen: set[str] = set()
        cursor: str | None = None
        for _page in range(MAX_PAGES):
            answer = api.list_spans(request(search, cursor))
            data = getattr(answer, "data", None)
            if not isinstance(data, list) or not all(hasattr(s, "attributes") for s in data):
                raise _Malformed("data is not a list of spans")
            spans.extend(_plain(s) for s in data)
            cursor = _after(answer)
            if cursor is None:
                return spans
            if cursor in seen:
                raise ClientError(
                    f"the Datadog API at {configuration.host} sent the same page cursor twice"
                    f" (after {len(seen) + 1} pages of {search!r}): stopped, the answer would"
                    " never end"
                )
            seen.add(cursor)
        raise ClientError(
            f"the Datadog API at {configuration.host} still had more spans after {MAX_PAGES}"
            f" pages of {PAGE_LIMIT} ({search!r}): stopped; narrow the window (--since)"
        )

    try:
        with ApiClient(configuration) as client:
            api = SpansApi(client)  # type: ignore[no-untyped-call]
            spans = every_page(api, search_query(query))
            errors = {
                str(s["attributes"]["span_id"])
                for s in every_page(api, search_query(query, "status:error"))
            }
    except ApiException as exc:
        raise _api_error(exc, configuration.host) from None
    except (OpenApiException, _Malformed, ValueError, TypeError, AttributeError) as exc:
        # The client's deserializer raises ApiTypeError/ApiValueError (OpenApiException),
        # or a plain ValueError/TypeError, on an answer that is not the documented shape.
        why = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise ClientError(
            f"the Datadog API at {configuration.host} answered something that is not the"
            f" documented Search spans shape ({why}): is --datadog-url a Datadog API?"
        ) from None
    except (HTTPError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, ResponseError):  # statuses retried MAX_RETRIES times
            raise ClientError(
                f"the Datadog API at {configuration.host} still answers {reason} after"
                f" {MAX_RETRIES} retries (rate limited or failing): try again later"
            ) from None
        raise ClientError(
            f"cannot reach the Datadog API at {configuration.host}: {type(reason).__name__}"
        ) from None
    return to_traces(spans, errors)


def _after(answer: Any) -> str | None:
    """``meta.page.after`` of an answer, None on the last page."""
    page = getattr(getattr(answer, "meta", None), "page", None)
    after = getattr(page, "after", None)
    if after is None:
        return None
    if not isinstance(after, str):
        raise _Malformed("meta.page.after is not a string")
    return after or None


FIELDS = (
    "service",
    "env",
    "resource_name",
    "span_id",
    "parent_id",
    "trace_id",
    "type",
    "tags",
    "start_timestamp",
    "end_timestamp",
    "retained_by",
    "custom",
)


def _plain(span: Any) -> dict[str, Any]:
    """The documented fields of a Span model, timestamps kept as parsed datetimes.

    (``to_dict()`` would render them back to text at millisecond precision.)
    """
    attributes = getattr(span, "attributes", None)
    plain = {name: getattr(attributes, name, None) for name in FIELDS}
    if not plain["span_id"]:
        raise _Malformed("a span without attributes.span_id")
    return {"attributes": plain}


def _api_error(exc: Any, host: str) -> ClientError:
    status = int(getattr(exc, "status", 0) or 0)
    if status in (401, 403):
        return ConfigError(
            f"the Datadog API at {host} refused the keys (HTTP {status}): check DD_API_KEY,"
            " DD_APP_KEY (needs the apm_read scope) and DD_SITE"
        )
    if status == 429:
        return ClientError(
            f"the Datadog API at {host} is still rate limiting after {MAX_RETRIES} retries"
            " (HTTP 429): try again later"
        )
    return ClientError(f"the Datadog API at {host} answered HTTP {status}: {exc.reason}")


def _ns(timestamp: Any) -> int:
    """A ``start_timestamp``/``end_timestamp`` (datetime or ISO 8601 text) in nanoseconds."""
    if isinstance(timestamp, str):
        try:
            timestamp = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        except ValueError:
            return 0
    return round(timestamp.timestamp() * 1e9) if isinstance(timestamp, datetime) else 0


def to_traces(spans: Iterable[dict[str, Any]], error_ids: set[str]) -> list[list[dict[str, Any]]]:
    """Datadog spans -> the trace lists the test agent answers (one shape, one selection)."""
    traces: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        attributes = span.get("attributes") or {}
        tags = dict(tag.split(":", 1) for tag in attributes.get("tags") or [] if ":" in str(tag))
        meta = {key: tags[key] for key in ("version", "env") if key in tags}
        if attributes.get("env"):
            meta["env"] = str(attributes["env"])
        custom = attributes.get("custom")
        for key in HTTP_FIELDS:
            value = _custom(custom, key)
            if value is not None:
                meta[key] = value
        span_id = str(attributes.get("span_id") or "")
        traces.setdefault(str(attributes.get("trace_id") or ""), []).append(
            {
                "service": attributes.get("service"),
                "name": attributes.get("type") or "",
                "resource": attributes.get("resource_name") or "",
                "span_id": span_id,
                "parent_id": str(attributes.get("parent_id") or "0"),
                "trace_id": str(attributes.get("trace_id") or ""),
                "start": _ns(attributes.get("start_timestamp")),
                "retained_by": attributes.get("retained_by"),
                "duration": max(
                    0,
                    _ns(attributes.get("end_timestamp")) - _ns(attributes.get("start_timestamp")),
                ),
                "error": 1 if span_id in error_ids else 0,
                "meta": meta,
            }
        )
    return list(traces.values())


# What the selection reads of a span's custom attributes: the status, what
# tells a probe (traces.is_probe) and an outgoing call (span.kind).
HTTP_FIELDS = ("http.status_code", "http.useragent", "http.route", "http.url", "span.kind")


def _custom(custom: Any, key: str) -> str | None:
    """A dotted key (``http.status_code``) of a span's custom attributes, nested or flat."""
    if not isinstance(custom, dict):
        return None
    group, _, name = key.partition(".")
    nested = custom.get(group)
    value = nested.get(name) if isinstance(nested, dict) else custom.get(key)
    return None if value is None else str(value)
