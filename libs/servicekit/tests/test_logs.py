import asyncio
import contextlib
import io
import json
import logging
from collections.abc import Iterator

from servicekit.http.access_log import AccessLogMiddleware
from servicekit.logs import JsonFormatter, JsonLineHandler, direct_handler


def test_record_is_one_json_line_with_extras() -> None:
    record = logging.LogRecord("books.access", logging.INFO, __file__, 1, "hello %s", ("x",), None)
    record.__dict__["http.status_code"] = 201
    line = JsonFormatter({"service": "books"}).format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "hello x"
    assert entry["status"] == "info"
    assert entry["service"] == "books"
    assert entry["http.status_code"] == 201


def test_exception_is_summarised_without_traceback() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert entry["error.kind"] == "RuntimeError"
    assert entry["error.message"] == "boom"
    assert "Traceback" not in json.dumps(entry)


def _root_with(handler: logging.Handler) -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_access_line_written_directly_has_the_fields_a_record_would() -> None:
    stream = io.StringIO()
    handler = JsonLineHandler(stream, {"service": "books"})
    logger = logging.getLogger("servicekit.access")
    scope: dict[str, object] = {
        "type": "http",
        "method": "GET",
        "path": "/books/7",
        "query_string": b"a=1",
        "client": ("127.0.0.1", 4000),
        "path_template": "/books/{book_id}",
    }
    middleware = AccessLogMiddleware(lambda *_: None)  # type: ignore[arg-type, return-value]

    def keep(_: logging.LogRecord) -> bool:
        return True

    with contextlib.contextmanager(_root_with)(handler):
        assert direct_handler(logger) is handler
        middleware._log(scope, 404, 1234)  # type: ignore[arg-type]
        logger.addFilter(keep)  # a filter could drop or change records: the logging path
        try:
            assert direct_handler(logger) is None
            middleware._log(scope, 404, 1234)  # type: ignore[arg-type]
        finally:
            logger.removeFilter(keep)
    direct, via_record = (json.loads(line) for line in stream.getvalue().splitlines())
    assert direct.pop("timestamp") and via_record.pop("timestamp")
    assert direct == via_record
    assert direct == {
        "status": "info",
        "logger.name": "servicekit.access",
        "message": "GET /books/7 404",
        "service": "books",
        "http.method": "GET",
        "http.url": "/books/7?a=1",
        "http.status_code": 404,
        "duration": 1234,
        "network.client.ip": "127.0.0.1",
        "http.route": "/books/{book_id}",
    }


async def test_lines_on_the_loop_are_written_together_after_the_iteration_in_order() -> None:
    stream = io.StringIO()
    handler = JsonLineHandler(stream)
    handler.write_fields("info", "a", "first", {})
    handler.write_fields("info", "a", "second", {})
    assert stream.getvalue() == ""  # buffered until the loop gets to the flush callback
    await asyncio.sleep(0)
    assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()] == [
        "first",
        "second",
    ]
    handler.write_fields("info", "a", "third", {})
    handler.emit(logging.makeLogRecord({"msg": "fourth", "levelno": logging.INFO}))
    messages = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
    assert messages == ["first", "second", "third", "fourth"]  # a record first writes the buffer
    handler.write_fields("info", "a", "fifth", {})
    handler.flush()  # as logging.shutdown() does at exit
    assert json.loads(stream.getvalue().splitlines()[-1])["message"] == "fifth"
