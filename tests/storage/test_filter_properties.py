"""Property test: random filter trees select, in PostgreSQL, exactly what a Python reference of the
documented semantics selects (proto/pgvector_grpc/v1/document.proto, Operator)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pgvector_grpc_server.domain.models import AllOf, AnyOf, Condition, Filter, Not
from pgvector_grpc_server.storage.filter_jsonpath import to_jsonpath

KEYS = ["a", "b", "c"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([-1.5, 0.5, 2.0, 2.5]),
    st.text(alphabet="xyz", max_size=3),
)
values = st.one_of(scalars, st.lists(st.one_of(st.integers(-3, 3), st.text(alphabet="xyz", max_size=2)), max_size=3))
documents = st.lists(st.dictionaries(st.sampled_from(KEYS), values, max_size=3), min_size=1, max_size=25)


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "array"


def _eq(doc: dict[str, Any], key: str, v: Any) -> bool:
    if v is None:
        return doc.get(key) is None
    return key in doc and _json_type(doc[key]) == _json_type(v) and doc[key] == v


def reference(node: Filter, doc: dict[str, Any]) -> bool:
    if isinstance(node, AllOf):
        return all(reference(o, doc) for o in node.operands)
    if isinstance(node, AnyOf):
        return any(reference(o, doc) for o in node.operands)
    if isinstance(node, Not):
        return not reference(node.operand, doc)
    key, op, v = node.path[0], node.operator, node.value
    field = doc.get(key)
    if op == "eq":
        return _eq(doc, key, v)
    if op == "ne":
        return not _eq(doc, key, v)
    if op in ("in", "nin"):
        found = any(_eq(doc, key, item) for item in v)  # type: ignore[union-attr]
        return found if op == "in" else not found
    if op == "exists":
        return (key in doc) == v
    if op == "contains":
        in_list = isinstance(field, list) and any(_json_type(e) == _json_type(v) and e == v for e in field)
        in_text = isinstance(v, str) and isinstance(field, str) and v in field
        return in_list or in_text
    if key not in doc or _json_type(field) != _json_type(v):
        return False
    return {"gt": field > v, "gte": field >= v, "lt": field < v, "lte": field <= v}[op]


def conditions() -> st.SearchStrategy[Condition]:
    key = st.sampled_from(KEYS).map(lambda k: (k,))
    comparable = st.one_of(st.integers(-3, 3), st.sampled_from([-1.5, 0.5, 2.0]), st.text(alphabet="xyz", max_size=2))
    return st.one_of(
        st.builds(Condition, key, st.sampled_from(["eq", "ne"]), scalars),
        st.builds(Condition, key, st.sampled_from(["gt", "gte", "lt", "lte"]), comparable),
        st.builds(Condition, key, st.sampled_from(["in", "nin"]), st.lists(scalars, max_size=3).map(tuple)),
        st.builds(Condition, key, st.just("exists"), st.booleans()),
        st.builds(
            Condition, key, st.just("contains"), st.one_of(st.integers(-3, 3), st.text(alphabet="xyz", max_size=2))
        ),
    )


filters = st.recursive(
    conditions(),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda ops: AllOf(tuple(ops))),
        st.lists(inner, max_size=3).map(lambda ops: AnyOf(tuple(ops))),
        inner.map(Not),
    ),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def conn(database: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database, autocommit=True) as c:
        yield c


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=documents, node=filters)
def test_postgres_agrees_with_the_reference(conn: psycopg.Connection, docs: list[dict[str, Any]], node: Filter) -> None:
    rows = conn.execute(
        "SELECT ordinality - 1 FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS d(doc, ordinality)"
        " WHERE doc @@ %s::jsonpath",
        (json.dumps(docs), to_jsonpath(node)),
    ).fetchall()
    assert {r[0] for r in rows} == {i for i, doc in enumerate(docs) if reference(node, doc)}
