"""Schemathesis fuzzes the served OpenAPI schema: no input may produce a 5xx.

Driven through Hypothesis directly (one bounded run per operation) rather than
schemathesis' pytest plugin, so the server fixture stays an ordinary fixture.
"""

from __future__ import annotations

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testkit.books import BooksServer

EXAMPLES_PER_OPERATION = 80


def test_books_fuzz_never_5xx(books: BooksServer) -> None:
    # A few existing books, so generated ids sometimes hit real rows.
    for i in range(5):
        httpx.post(f"{books.url}/books", json={"title": f"seed {i}", "author": "fuzz"})
    schema = schemathesis.openapi.from_url(f"{books.url}/schema/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 6

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: schemathesis.Case) -> None:
            response = case.call(base_url=books.url, timeout=10)
            where = (case.method, case.formatted_path, case.query, case.body)
            assert response.status_code < 500, (where, response.text)
            if response.status_code >= 400:
                assert set(response.json()) == {"error", "detail"}, (where, response.text)

        call()


def test_books_fuzz_raw_bodies_never_5xx(books: BooksServer) -> None:
    """Arbitrary bytes and JSON values as bodies, with and without the JSON content type."""
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
        max_leaves=10,
    )
    bodies = st.binary(max_size=300) | json_values.map(
        lambda v: httpx.Request("POST", "/", json=v).content
    )

    with httpx.Client(base_url=books.url, timeout=10) as http:

        @given(
            body=bodies,
            method=st.sampled_from(["POST", "PUT", "PATCH"]),
            content_type=st.sampled_from(["application/json", "text/plain", ""]),
        )
        @settings(max_examples=150, deadline=None, derandomize=True, database=None)
        def call(body: bytes, method: str, content_type: str) -> None:
            path = "/books" if method == "POST" else "/books/1"
            response = http.request(
                method, path, content=body, headers={"Content-Type": content_type}
            )
            assert response.status_code < 500, (method, body, response.text)

        call()
