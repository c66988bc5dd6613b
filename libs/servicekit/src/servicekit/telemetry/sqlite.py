"""Query spans for sqlite3 (and aiosqlite, which runs sqlite3 on its thread).

ddtrace's own sqlite3 integration wraps every connection and cursor in a
``wrapt`` proxy and dispatches security/DBM events per query; on a books read
that costs more than the query itself. Here ``sqlite3.connect`` hands out
connection and cursor *subclasses* whose ``execute*`` methods record one
``sqlite.query`` span each (resource = the SQL text, as Datadog expects), with
nothing else per call.

Except for reads run on the event loop itself (books' in-loop reader: a
primary-key lookup takes microseconds, less than recording a span): those add
no span but tag the active span (the request's) with ``db.system`` and
``db.statement``, so a hot GET costs one span, not two. Queries on other
threads (aiosqlite's writer) keep their own spans.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

_SPAN_NAME = "sqlite.query"


def trace_sqlite3() -> None:
    from ddtrace.ext import SpanTypes
    from ddtrace.trace import tracer

    if getattr(sqlite3, "_servicekit_traced", False):
        return

    def traced(run: Callable[..., Any], sql: str, *args: Any) -> Any:
        if asyncio._get_running_loop() is not None:
            active = tracer.current_span()
            if active is not None:
                active._set_attribute("db.system", "sqlite")
                active._set_attribute("db.statement", sql)
                return run(sql, *args)
        with tracer.trace(_SPAN_NAME, resource=sql, span_type=SpanTypes.SQL) as span:
            span._set_attribute("span.kind", "client")
            span._set_attribute("component", "sqlite3")
            span._set_attribute("db.system", "sqlite")
            return run(sql, *args)

    class TracedExecute:
        """``execute*`` that record a span; mixed into the cursor and the connection."""

        def execute(self, sql: str, parameters: Any = (), /) -> Any:
            return traced(super().execute, sql, parameters)  # type: ignore[misc]

        def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any:
            return traced(super().executemany, sql, parameters)  # type: ignore[misc]

        def executescript(self, sql_script: str, /) -> Any:
            return traced(super().executescript, sql_script)  # type: ignore[misc]

    class TracedCursor(TracedExecute, sqlite3.Cursor):
        pass

    # Connection.execute* (traced) run the query on a cursor from C, without
    # going through TracedCursor.execute: still one span per query.
    class TracedConnection(TracedExecute, sqlite3.Connection):
        def cursor(self, factory: Any = TracedCursor) -> Any:
            return super().cursor(factory)

    original_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("factory", TracedConnection)
        return original_connect(*args, **kwargs)

    sqlite3.connect = connect
    sqlite3._servicekit_traced = True  # type: ignore[attr-defined]
