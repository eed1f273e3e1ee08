"""Haystack filters beyond the conformance suite: datetime objects, offsets, nested fields and the
errors a caller gets for what the store cannot filter on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from haystack import Document
from haystack.errors import FilterError
from pgvector_grpc.haystack import PgvectorGrpcDocumentStore

from tests.fix_server import ServerThread
from tests.haystack.stores import drop, new_store


@pytest.fixture
def store(server: ServerThread) -> Iterator[PgvectorGrpcDocumentStore]:
    store = new_store(server, dimension=2)
    store.write_documents(
        [
            Document(id="a", content="a", meta={"at": "2024-05-01T10:00:00+02:00", "author": {"name": "Ada"}}),
            Document(id="b", content="b", meta={"at": "2024-05-01T09:00:00", "author": {"name": "Bob"}}),
            Document(id="c", content="c", meta={"at": "2023-01-01", "author": {"name": "Cy"}}),
        ]
    )
    yield store
    store.close()
    drop(server, store)


def ids(docs: list[Document]) -> list[str]:
    return [d.id for d in docs]


def test_dates_compare_in_time_whether_given_as_strings_or_datetimes(store: PgvectorGrpcDocumentStore) -> None:
    # "a" is 08:00 UTC, "b" 09:00 UTC (no offset = UTC), "c" a year earlier
    since = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    assert ids(store.filter_documents({"field": "meta.at", "operator": ">", "value": since})) == ["b"]
    assert ids(store.filter_documents({"field": "meta.at", "operator": "<=", "value": "2024-05-01T08:00:00Z"})) == [
        "a",
        "c",
    ]


def test_nested_meta_fields_are_paths(store: PgvectorGrpcDocumentStore) -> None:
    found = store.filter_documents({"field": "meta.author.name", "operator": "in", "value": ["Ada", "Cy"]})
    assert ids(found) == ["a", "c"]


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"field": "content", "operator": "==", "value": "a"}, "'content' is not supported"),
        ({"field": "meta.at", "operator": ">", "value": "yesterday"}, "ISO 8601"),
        ({"field": "meta.at", "operator": "in", "value": "a"}, "needs a list"),
        ({"operator": "XOR", "conditions": []}, "unknown logical operator"),
        ({"field": "meta.at", "operator": "~", "value": 1}, "unknown comparison operator"),
    ],
)
def test_filters_the_store_cannot_run_raise_filter_error(
    store: PgvectorGrpcDocumentStore, filters: dict[str, object], message: str
) -> None:
    with pytest.raises(FilterError, match=message):
        store.filter_documents(filters)
