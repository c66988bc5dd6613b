"""The book as the API sees it: request bodies with their bounds, and the response."""

from __future__ import annotations

from typing import Annotated

import msgspec

Title = Annotated[
    str, msgspec.Meta(min_length=1, max_length=300, pattern=r"\S", description="1-300 characters")
]
Author = Annotated[
    str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S", description="1-200 characters")
]
Description = Annotated[str, msgspec.Meta(max_length=4000, description="up to 4,000 characters")]
Timestamp = Annotated[
    str,
    msgspec.Meta(
        description="UTC, ISO 8601 (e.g. 2026-01-31T12:00:00.000Z)",
        extra_json_schema={"format": "date-time"},
    ),
]

MAX_ID = 2**63 - 1


def _refuse_nul(**fields: object) -> None:
    """PostgreSQL text cannot hold U+0000, so neither backend accepts it (same contract)."""
    for name, value in fields.items():
        if isinstance(value, str) and "\x00" in value:
            raise ValueError(f"{name} must not contain the NUL character (\\u0000)")


class BookIn(msgspec.Struct, forbid_unknown_fields=True):
    """Body of POST /books and PUT /books/{id}: the whole book."""

    title: Title
    author: Author
    description: Description | None = None

    def __post_init__(self) -> None:
        _refuse_nul(title=self.title, author=self.author, description=self.description)


class BookPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Body of PATCH /books/{id}: only the fields to change (``description: null`` clears it)."""

    title: Title | msgspec.UnsetType = msgspec.UNSET
    author: Author | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType | None = msgspec.UNSET

    def __post_init__(self) -> None:
        _refuse_nul(title=self.title, author=self.author, description=self.description)

    def is_empty(self) -> bool:
        return (
            self.title is msgspec.UNSET
            and self.author is msgspec.UNSET
            and self.description is msgspec.UNSET
        )


class Book(msgspec.Struct):
    """A stored book, as returned by every route (fields in this order)."""

    id: int
    title: str
    author: str
    description: str | None
    created_at: Timestamp
    updated_at: Timestamp
