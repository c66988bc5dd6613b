import json
import logging

from servicekit.logs import JsonFormatter


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
