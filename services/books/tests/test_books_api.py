"""The books API against a real server process, on SQLite and on PostgreSQL (see conftest)."""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest
from testkit.books import BooksServer, Database, running_books

JSON = {"Content-Type": "application/json"}
MAX_ID = 2**63 - 1


def assert_error(response: httpx.Response, status: int, *needles: str) -> dict[str, str]:
    """A JSON error body with the conventional shape, mentioning every needle."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "detail"}, body
    assert body["error"] and body["detail"]
    for needle in needles:
        assert needle in body["detail"], body
    assert "Traceback" not in response.text
    return body


def wait_for_log_lines(books: BooksServer, needle: str) -> list[dict[str, object]]:
    """The JSON log lines containing ``needle``, once there is at least one (30 s deadline)."""
    deadline = time.monotonic() + 30
    while True:
        output = books.process.output()
        lines = [json.loads(line) for line in output.splitlines() if needle in line]
        if lines:
            return lines
        assert time.monotonic() < deadline, f"no log line with {needle!r}:\n{output[-2000:]}"
        time.sleep(0.02)


def create(client: httpx.Client, **fields: object) -> dict[str, object]:
    response = client.post("/books", json={"title": "T", "author": "A", **fields})
    assert response.status_code == 201, response.text
    return response.json()


def test_books_original_walkthrough_on_fresh_database(fresh_database: Database) -> None:
    with running_books(fresh_database) as server:
        created = subprocess.run(
            [
                "curl", "-s", "-i", "-H", "Content-Type: application/json",
                "-d", '{ "author": "occupytheweb", "title": "Network Basics for Hackers"}',
                "-X", "POST", f"{server.url}/books",
            ],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        listed = subprocess.run(
            ["curl", "-s", f"{server.url}/books"], capture_output=True, text=True, check=True
        ).stdout
    assert created.startswith("HTTP/1.1 201")
    assert "location: /books/1" in created.lower()
    expected = '"id":1,"title":"Network Basics for Hackers","author":"occupytheweb"'
    assert expected in created
    assert expected in listed
    assert json.loads(listed)[0]["id"] == 1


def test_books_crud_round_trip(client: httpx.Client) -> None:
    created = client.post(
        "/books", json={"title": "Dune", "author": "Frank Herbert", "description": "Spice."}
    )
    assert created.status_code == 201
    book = created.json()
    assert created.headers["location"] == f"/books/{book['id']}"
    assert list(book) == ["id", "title", "author", "description", "created_at", "updated_at"]
    assert book["title"] == "Dune" and book["author"] == "Frank Herbert"
    assert book["description"] == "Spice."
    assert book["created_at"].endswith("Z") and book["created_at"] == book["updated_at"]
    path = f"/books/{book['id']}"

    assert client.get(path).json() == book
    assert book in client.get("/books", params={"limit": 1000}).json()

    replaced = client.put(path, json={"title": "Dune Messiah", "author": "F. Herbert"})
    assert replaced.status_code == 200
    assert replaced.json()["title"] == "Dune Messiah"
    assert replaced.json()["description"] is None  # PUT replaces the whole book
    assert replaced.json()["created_at"] == book["created_at"]
    assert replaced.json()["updated_at"] >= book["updated_at"]

    patched = client.patch(path, json={"description": "Sequel."})
    assert patched.status_code == 200
    assert patched.json()["title"] == "Dune Messiah"
    assert patched.json()["description"] == "Sequel."
    cleared = client.patch(path, json={"description": None, "author": "Frank Herbert"})
    assert cleared.json()["description"] is None
    assert cleared.json()["author"] == "Frank Herbert"
    assert client.get(path).json() == cleared.json()

    deleted = client.delete(path)
    assert deleted.status_code == 204 and deleted.content == b""
    assert_error(client.get(path), 404, str(book["id"]))
    assert_error(client.delete(path), 404)


def test_books_unicode_and_limits_round_trip(client: httpx.Client) -> None:
    title = "É" * 300
    description = 'quote " backslash \\ newline \n tab \t 🙂' + "x" * 3950
    book = create(client, title=title, author="a" * 200, description=description)
    fetched = client.get(f"/books/{book['id']}").json()
    assert fetched["title"] == title
    assert fetched["description"] == description


def test_books_list_is_ordered_and_paginated(fresh_database: Database) -> None:
    with running_books(fresh_database) as server, httpx.Client(base_url=server.url) as http:
        ids = [create(http, title=f"b{i}")["id"] for i in range(5)]
        assert [b["id"] for b in http.get("/books").json()] == ids
        assert [b["id"] for b in http.get("/books?limit=2").json()] == ids[:2]
        assert [b["id"] for b in http.get("/books?limit=2&offset=3").json()] == ids[3:]
        assert http.get("/books?offset=5").json() == []
        assert http.get("/books?limit=1000").status_code == 200
        assert http.get(f"/books?offset={MAX_ID}").json() == []
        for i in range(5, 105):
            create(http, title=f"b{i}")
        assert len(http.get("/books").json()) == 100  # default limit
        assert len(http.get("/books?limit=1000").json()) == 105


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
        (f"offset={MAX_ID + 1}", "offset"),
        ("offset=1.5", "offset"),
    ],
)
def test_books_pagination_out_of_range(client: httpx.Client, query: str, needle: str) -> None:
    assert_error(client.get(f"/books?{query}"), 400, needle)


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        ({"author": "A"}, ["title"]),
        ({"title": "T"}, ["author"]),
        ({"title": "", "author": "A"}, ["title", "length >= 1"]),
        ({"title": "T", "author": ""}, ["author"]),
        ({"title": "   ", "author": "A"}, ["title"]),
        ({"title": "x" * 301, "author": "A"}, ["title", "300"]),
        ({"title": "T", "author": "x" * 201}, ["author", "200"]),
        ({"title": "T", "author": "A", "description": "x" * 4001}, ["description", "4000"]),
        ({"title": 5, "author": "A"}, ["title", "str"]),
        ({"title": "T", "author": ["A"]}, ["author", "str"]),
        ({"title": "T", "author": "A", "description": 1}, ["description"]),
        ({"title": None, "author": "A"}, ["title"]),
        ({"title": "T", "author": "A", "isbn": "1"}, ["unknown field", "isbn"]),
        ({"title": "T", "author": "A", "id": 7}, ["unknown field", "id"]),
        ({"title": "T\u0000", "author": "A"}, ["title", "NUL"]),
        ({"title": "T", "author": "A", "description": "\u0000"}, ["description", "NUL"]),
        ([{"title": "T", "author": "A"}], ["object"]),
        ("just a string", ["object"]),
    ],
)
def test_books_bad_body_is_400(client: httpx.Client, body: object, needles: list[str]) -> None:
    assert_error(client.post("/books", json=body), 400, *needles)
    book = create(client)
    if isinstance(body, dict) and "title" in body and "author" in body:
        assert_error(client.put(f"/books/{book['id']}", json=body), 400, *needles)


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        ({}, ["at least one"]),
        ({"title": ""}, ["title"]),
        ({"title": None}, ["title"]),
        ({"author": "x" * 201}, ["author"]),
        ({"colour": "red"}, ["unknown field", "colour"]),
        ({"author": "a\u0000b"}, ["author", "NUL"]),
    ],
)
def test_books_bad_patch_is_400(client: httpx.Client, body: object, needles: list[str]) -> None:
    book = create(client)
    assert_error(client.patch(f"/books/{book['id']}", json=body), 400, *needles)
    assert client.get(f"/books/{book['id']}").json() == book


@pytest.mark.parametrize(
    "raw", ["{", '{"title": "T", "author": }', "not json", "\xff\xfe", '{"title":"T"']
)
def test_books_malformed_json_is_400(client: httpx.Client, raw: str) -> None:
    body = assert_error(
        client.post("/books", content=raw.encode("latin-1"), headers=JSON), 400, "JSON"
    )
    assert body["error"] == "malformed_json"


def test_books_empty_body_is_400(client: httpx.Client) -> None:
    assert_error(client.post("/books", content=b"", headers=JSON), 400)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_books_wrong_content_type_is_415(client: httpx.Client, content_type: str) -> None:
    body = b'{"title": "T", "author": "A"}'
    response = client.post("/books", content=body, headers={"Content-Type": content_type})
    assert_error(response, 415, "application/json", content_type)
    book = create(client)
    response = client.put(f"/books/{book['id']}", content=body, headers={"Content-Type": ""})
    assert_error(response, 415, "application/json")


def test_books_body_over_64_kib_is_413(client: httpx.Client) -> None:
    big = json.dumps({"title": "T", "author": "A", "description": "x" * (64 * 1024)})
    assert_error(client.post("/books", content=big, headers=JSON), 413, "65536")

    def chunks() -> object:
        yield b'{"title": "T", "author": "A", "description": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'"}'

    streamed = client.post("/books", content=chunks(), headers=JSON)  # chunked, no length
    assert_error(streamed, 413)


@pytest.mark.parametrize(
    "raw_id", ["abc", "0", "-1", "1.5", str(MAX_ID + 1), "9" * 40, "%C3%A9", "1e3", " 1"]
)
def test_books_bad_id_is_400(client: httpx.Client, raw_id: str) -> None:
    for method in ("GET", "DELETE"):
        assert_error(client.request(method, f"/books/{raw_id}"), 400, "id")
    assert_error(client.put(f"/books/{raw_id}", json={"title": "T", "author": "A"}), 400, "id")
    assert_error(client.patch(f"/books/{raw_id}", json={"title": "T"}), 400, "id")


def test_books_unknown_id_is_404(client: httpx.Client) -> None:
    for path in ("/books/999999", f"/books/{MAX_ID}"):
        assert_error(client.get(path), 404, "no book")
        assert_error(client.put(path, json={"title": "T", "author": "A"}), 404, "no book")
        assert_error(client.patch(path, json={"title": "T"}), 404, "no book")
        assert_error(client.delete(path), 404, "no book")


def test_books_unknown_route_and_method(client: httpx.Client) -> None:
    assert_error(client.get("/nope"), 404, "/nope")
    assert_error(client.delete("/books"), 405, "DELETE")
    assert_error(client.post("/books/1", json={}), 405, "POST")


def test_books_probes_and_openapi(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok"}
    schema = client.get("/schema/openapi.json").json()
    assert set(schema["paths"]) == {"/books", "/books/{book_id}"}
    book = schema["components"]["schemas"]["BookIn"]["properties"]
    assert book["title"]["maxLength"] == 300 and book["author"]["maxLength"] == 200


def test_books_access_log_has_one_json_line_per_request(books: BooksServer) -> None:
    marker = "/books/424242?probe=access-log"
    httpx.get(books.url + marker)
    # The line is written once the response has been sent: wait for it, then for
    # a later request's line, so a duplicate of the first would be in by then.
    lines = wait_for_log_lines(books, marker)
    httpx.get(books.url + "/books/424242?probe=after")
    wait_for_log_lines(books, "probe=after")
    lines = wait_for_log_lines(books, marker)
    assert len(lines) == 1
    entry = lines[0]
    assert entry["http.method"] == "GET"
    assert entry["http.url"] == marker
    assert entry["http.status_code"] == 404
    assert entry["http.route"] == "/books/{book_id}"
    assert isinstance(entry["duration"], int) and entry["duration"] > 0
    assert entry["network.client.ip"] == "127.0.0.1"
    assert entry["service"] == "books"
