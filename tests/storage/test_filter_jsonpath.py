"""The filter compiler against real PostgreSQL: each operator's semantics, NOT, types, injection."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from pgvector_grpc_server.domain.models import AllOf, AnyOf, Condition, Filter, Not
from pgvector_grpc_server.storage.filter_jsonpath import to_jsonpath

DOCS = {
    "a": {"cat": "news", "year": 2020, "score": 0.5, "tags": ["x", "y"], "ok": True, "author": {"name": "Ann"}},
    "b": {"cat": "blog", "year": 2021, "score": 1.5, "tags": ["y"], "ok": False, "note": None},
    "c": {"cat": "news", "year": "2022", "title": "hello world"},
    "d": {},
}


@pytest.fixture(scope="module")
def conn(database: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database, autocommit=True) as c:
        c.execute("CREATE TEMP TABLE m (id text, metadata jsonb)")
        with c.cursor() as cur:
            cur.executemany("INSERT INTO m VALUES (%s, %s)", [(k, json.dumps(v)) for k, v in DOCS.items()])
        yield c


def matching(conn: psycopg.Connection, node: Filter) -> set[str]:
    rows = conn.execute("SELECT id FROM m WHERE metadata @@ %s::jsonpath", (to_jsonpath(node),)).fetchall()
    return {r[0] for r in rows}


def cond(path: str | tuple[str, ...], op: str, value: object) -> Condition:
    return Condition((path,) if isinstance(path, str) else path, op, value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        (cond("cat", "eq", "news"), {"a", "c"}),
        (cond("cat", "ne", "news"), {"b", "d"}),
        (cond("year", "eq", 2020), {"a"}),
        (cond("year", "eq", 2020.0), {"a"}),
        (cond("year", "gte", 2021), {"b"}),  # "2022" is a string: never compared with a number
        (cond("year", "gt", "2021"), {"c"}),
        (cond("year", "ne", 2020), {"b", "c", "d"}),
        (cond("score", "lt", 1), {"a"}),
        (cond("score", "lte", 1.5), {"a", "b"}),
        (cond("ok", "eq", True), {"a"}),
        (cond("ok", "eq", False), {"b"}),
        (cond("note", "eq", None), {"a", "c", "d", "b"}),  # null matches missing too
        (cond("ok", "eq", None), {"c", "d"}),
        (cond("ok", "ne", None), {"a", "b"}),
        (cond("cat", "in", ("news", "other")), {"a", "c"}),
        (cond("cat", "in", ()), set()),
        (cond("cat", "nin", ("news",)), {"b", "d"}),
        (cond("year", "in", (2020, 2021)), {"a", "b"}),
        (cond("tags", "exists", True), {"a", "b"}),
        (cond("tags", "exists", False), {"c", "d"}),
        (cond("tags", "contains", "x"), {"a"}),
        (cond("tags", "contains", "y"), {"a", "b"}),
        (cond("title", "contains", "lo wo"), {"c"}),
        (cond("title", "contains", "l.o"), set()),  # regex characters are literal
        (cond("tags", "eq", "x"), set()),  # equality does not look inside lists
        (cond(("author", "name"), "eq", "Ann"), {"a"}),
        (Not(cond("cat", "eq", "news")), {"b", "d"}),
        (Not(cond("year", "gt", 2020)), {"a", "c", "d"}),  # two-valued: mismatched types are false, NOT is true
        (AllOf((cond("cat", "eq", "news"), cond("year", "eq", 2020))), {"a"}),
        (AnyOf((cond("cat", "eq", "blog"), cond("title", "exists", True))), {"b", "c"}),
        (AllOf(()), {"a", "b", "c", "d"}),
        (AnyOf(()), set()),
        (Not(AnyOf((cond("cat", "eq", "blog"), Not(cond("year", "exists", True))))), {"a", "c"}),
    ],
)
def test_operator_semantics(conn: psycopg.Connection, node: Filter, expected: set[str]) -> None:
    assert matching(conn, node) == expected


INJECTIONS = [
    "') OR 1=1 --",
    '" || true || "',
    '"; DROP TABLE m; --',
    "$$; SELECT 1; $$",
    "\\",
    '\\" == \\"',
    "ünïcødé ✓ 🚀",
    "a\nb\tc",
    "$.cat",
    "@ == @",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_hostile_keys_and_values_are_literal(conn: psycopg.Connection, text: str) -> None:
    assert matching(conn, cond(text, "eq", "news")) == set()
    assert matching(conn, cond("cat", "eq", text)) == set()
    assert matching(conn, cond("title", "contains", text)) == set()
    assert matching(conn, cond(text, "exists", False)) == set(DOCS)
    assert conn.execute("SELECT count(*) FROM m").fetchone() == (4,)


def test_hostile_key_matches_itself(conn: psycopg.Connection) -> None:
    key = 'we\'ird "key" $.x ✓'
    conn.execute("INSERT INTO m VALUES ('e', %s)", (json.dumps({key: "v\"al'"}),))
    try:
        assert matching(conn, cond(key, "eq", "v\"al'")) == {"e"}
    finally:
        conn.execute("DELETE FROM m WHERE id = 'e'")
