"""Tenant isolation enforced by PostgreSQL: a multi-tenant collection read and written AS the app role
(pgvector_grpc_app), two tenants holding the same ids, no tenant = no rows."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from pgvector_grpc_server.storage.pool import STAGING_DDL
from psycopg import errors

from tests.sql.conftest import as_tenant

Conn = psycopg.Connection[tuple[Any, ...]]

ROWS = {
    "a": [("x1", "alpha one", '{"k": 1}', "[1,0,0]"), ("x2", "alpha two", '{"k": 2}', "[0,1,0]")],
    "b": [
        ("x1", "bravo one", '{"k": 1}', "[1,0,0]"),
        ("x2", "bravo two", '{"k": 2}', "[0,1,0]"),
        ("b-only", "bravo secret", '{"k": 1, "secret": true}', "[1,0.1,0]"),
    ],
}


@pytest.fixture(scope="module", autouse=True)
def seeded(app_db: str) -> None:
    """Collection mt (multi-tenant, 3 dimensions) created and filled by the app role, one transaction per tenant."""
    with psycopg.connect(app_db, autocommit=True) as conn:
        conn.execute("SELECT pgvector_grpc.create_collection('mt', 3, multi_tenant => true)")
        for tenant, rows in ROWS.items():
            with as_tenant(conn, tenant):
                for row in rows:
                    conn.execute(
                        "INSERT INTO pgvector_grpc.mt (id, content, metadata, embedding) VALUES (%s, %s, %s, %s)", row
                    )


def rows_of(conn: Conn, tenant: str) -> set[tuple[str, str]]:
    with as_tenant(conn, tenant):
        return {(r[0], r[1]) for r in conn.execute("SELECT id, content FROM pgvector_grpc.mt").fetchall()}


def test_the_table_is_keyed_by_tenant_and_forces_row_level_security(app: Conn) -> None:
    row = app.execute(
        "SELECT c.relrowsecurity, c.relforcerowsecurity, pg_get_constraintdef(k.oid), pg_get_userbyid(c.relowner)"
        " FROM pg_class c JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'p'"
        " WHERE c.oid = 'pgvector_grpc.mt'::regclass"
    ).fetchone()
    assert row == (True, True, "PRIMARY KEY (tenant_id, id)", "pgvector_grpc_owner")
    policies = app.execute("SELECT cmd FROM pg_policies WHERE tablename = 'mt' ORDER BY cmd").fetchall()
    assert [p[0] for p in policies] == ["DELETE", "INSERT", "SELECT", "UPDATE"]


def test_without_a_tenant_the_app_sees_nothing_and_cannot_write(app: Conn) -> None:
    assert app.execute("SELECT count(*) FROM pgvector_grpc.mt").fetchone() == (0,)
    assert app.execute("SELECT * FROM pgvector_grpc.search_documents('mt', '[1,0,0]', 10)").fetchall() == []
    assert app.execute("UPDATE pgvector_grpc.mt SET content = 'x'").rowcount == 0
    assert app.execute("DELETE FROM pgvector_grpc.mt").rowcount == 0
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        app.execute("INSERT INTO pgvector_grpc.mt (id) VALUES ('new')")
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        app.execute("INSERT INTO pgvector_grpc.mt (tenant_id, id) VALUES ('a', 'new')")
    with as_tenant(app, ""):  # an empty tenant is no tenant
        assert app.execute("SELECT count(*) FROM pgvector_grpc.mt").fetchone() == (0,)
    assert rows_of(app, "b") == {(r[0], r[1]) for r in ROWS["b"]}  # nothing was changed


def test_each_tenant_reads_only_its_rows_with_the_same_ids(app: Conn) -> None:
    assert rows_of(app, "a") == {("x1", "alpha one"), ("x2", "alpha two")}
    assert rows_of(app, "b") == {(r[0], r[1]) for r in ROWS["b"]}
    assert rows_of(app, "nobody") == set()
    with as_tenant(app, "a"):
        assert app.execute("SELECT count(*) FROM pgvector_grpc.mt").fetchone() == (2,)
        assert app.execute("SELECT content FROM pgvector_grpc.mt WHERE id = 'x1'").fetchall() == [("alpha one",)]
        # Filters naming B's id, content or metadata, or B's tenant itself, find nothing.
        assert app.execute("SELECT 1 FROM pgvector_grpc.mt WHERE id = 'b-only'").fetchall() == []
        assert app.execute("SELECT 1 FROM pgvector_grpc.mt WHERE content LIKE 'bravo%'").fetchall() == []
        assert app.execute("SELECT 1 FROM pgvector_grpc.mt WHERE metadata @> '{\"secret\": true}'").fetchall() == []
        assert app.execute("SELECT 1 FROM pgvector_grpc.mt WHERE tenant_id = 'b'").fetchall() == []
        on_document = (
            "SELECT id FROM pgvector_grpc.mt WHERE jsonb_path_match_tz("
            "pgvector_grpc.document_object(id, content, metadata), %s::jsonpath, '{}', true)"
        )
        assert app.execute(on_document, ('$.content starts with "bravo"',)).fetchall() == []
        assert app.execute(on_document, ('$.id == "b-only"',)).fetchall() == []
        # Aggregates (DescribeMetadata / GetFieldValues) count A's rows only.
        keys = app.execute("SELECT e.key, count(*) FROM pgvector_grpc.mt, jsonb_each(metadata) e GROUP BY 1").fetchall()
        assert keys == [("k", 2)]


def test_a_tenant_cannot_change_or_delete_another_tenants_rows(app: Conn) -> None:
    with as_tenant(app, "a"):
        assert app.execute("UPDATE pgvector_grpc.mt SET content = 'owned' WHERE id = 'b-only'").rowcount == 0
        assert app.execute("DELETE FROM pgvector_grpc.mt WHERE id = 'b-only'").rowcount == 0
        assert app.execute("UPDATE pgvector_grpc.mt SET metadata = metadata || '{\"m\": 1}'").rowcount == 2
        assert app.execute("DELETE FROM pgvector_grpc.mt WHERE id = 'x1'").rowcount == 1
        assert app.execute("DELETE FROM pgvector_grpc.mt").rowcount == 1
        raise psycopg.Rollback()
    assert rows_of(app, "b") == {(r[0], r[1]) for r in ROWS["b"]}
    assert rows_of(app, "a") == {("x1", "alpha one"), ("x2", "alpha two")}


def test_a_tenant_cannot_write_rows_into_another_tenant(app: Conn) -> None:
    for statement in (
        "INSERT INTO pgvector_grpc.mt (tenant_id, id) VALUES ('b', 'planted')",
        "UPDATE pgvector_grpc.mt SET tenant_id = 'b' WHERE id = 'x1'",
    ):
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"), as_tenant(app, "a"):
            app.execute(statement)
    assert rows_of(app, "b") == {(r[0], r[1]) for r in ROWS["b"]}


def test_the_tenant_setting_does_not_outlive_its_transaction(app: Conn) -> None:
    with as_tenant(app, "a"):
        assert app.execute("SELECT count(*) FROM pgvector_grpc.mt").fetchone() == (2,)
    # The next transaction on the same (pooled) connection has no tenant: committed ...
    assert app.execute("SELECT current_setting('pgvector_grpc.tenant', true)").fetchone() == ("",)
    assert app.execute("SELECT count(*) FROM pgvector_grpc.mt").fetchone() == (0,)
    # ... or rolled back.
    with pytest.raises(errors.DivisionByZero), as_tenant(app, "b"):
        app.execute("SELECT 1 / 0")
    with app.transaction():
        assert app.execute("SELECT pgvector_grpc.current_tenant()").fetchone() == (None,)
        assert app.execute("SELECT count(*) FROM pgvector_grpc.mt").fetchone() == (0,)


def test_search_documents_returns_only_the_tenants_rows(app: Conn) -> None:
    search = "SELECT id, content FROM pgvector_grpc.search_documents('mt', '[1,0,0]', 10{})"
    with as_tenant(app, "a"):
        assert app.execute(search.format("")).fetchall() == [("x1", "alpha one"), ("x2", "alpha two")]
        by_id = ", filter => '$.id == \"b-only\"', filter_document => true"
        assert app.execute(search.format(by_id)).fetchall() == []
        secret = ", metadata_contains => '{\"secret\": true}'"
        assert app.execute(search.format(secret)).fetchall() == []
    with as_tenant(app, "b"):
        two = "SELECT id FROM pgvector_grpc.search_documents('mt', '[1,0,0]', 2)"
        assert app.execute(two).fetchall() == [("x1",), ("b-only",)]
        assert app.execute(search.format(secret)).fetchall() == [("b-only", "bravo secret")]


def test_search_documents_tenant_argument_lasts_for_its_statement_only(app: Conn) -> None:
    """In autocommit (as the server's single-round-trip search runs) the tenant argument is set for
    the statement's transaction: the next statement on the pooled connection has no tenant again."""
    search = "SELECT id FROM pgvector_grpc.search_documents('mt', '[1,0,0]', 10, tenant => %s)"
    assert app.execute(search, ("a",)).fetchall() == [("x1",), ("x2",)]
    assert app.execute("SELECT pgvector_grpc.current_tenant()").fetchone() == (None,)
    assert app.execute("SELECT count(*) FROM pgvector_grpc.mt").fetchone() == (0,)
    assert app.execute(search, ("b",)).fetchall() == [("x1",), ("b-only",), ("x2",)]
    assert app.execute(search, ("",)).fetchall() == []  # an empty tenant is no tenant


def test_ingest_goes_through_the_staging_table_under_row_level_security(app: Conn) -> None:
    app.execute(STAGING_DDL)  # what the server's pool does on every connection
    staged = [
        ("x1", "alpha one v2", "[1,0,0]"),
        ("b-only", "alpha's own b-only", "[0,0,1]"),
        ("x3", "alpha three", None),
    ]
    direct = "COPY pgvector_grpc.mt (id, content) FROM STDIN"
    with (
        pytest.raises(errors.FeatureNotSupported, match="row-level security"),
        as_tenant(app, "a"),
        app.cursor().copy(direct) as copy,
    ):
        copy.write_row(("x9", "direct"))
    with as_tenant(app, "a"):
        with app.cursor().copy("COPY pgvector_grpc_staging (id, content, embedding) FROM STDIN") as copy:
            for row in staged:
                copy.write_row(row)
        result = app.execute("SELECT * FROM pgvector_grpc.insert_from_staging('mt', 'upsert')").fetchone()
        assert result == (2, 3)  # x1 updated; b-only and x3 new rows of A's own
    assert rows_of(app, "a") == {
        ("x1", "alpha one v2"),
        ("x2", "alpha two"),
        ("b-only", "alpha's own b-only"),
        ("x3", "alpha three"),
    }
    assert rows_of(app, "b") == {(r[0], r[1]) for r in ROWS["b"]}  # B's x1 and b-only untouched
    with as_tenant(app, "a"):
        assert app.execute("SELECT count(*) FROM pgvector_grpc_staging").fetchone() == (0,)  # emptied at commit
        app.execute("INSERT INTO pgvector_grpc_staging (id, content) VALUES ('x1', 'skipped'), ('x4', 'four')")
        assert app.execute("SELECT * FROM pgvector_grpc.insert_from_staging('mt', 'skip')").fetchone() == (1, 1)
    with pytest.raises(errors.UniqueViolation), as_tenant(app, "a"):
        app.execute("INSERT INTO pgvector_grpc_staging (id) VALUES ('x2')")
        app.execute("SELECT * FROM pgvector_grpc.insert_from_staging('mt', 'fail')")
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"), app.transaction():  # no tenant
        app.execute("INSERT INTO pgvector_grpc_staging (id) VALUES ('x5')")
        app.execute("SELECT * FROM pgvector_grpc.insert_from_staging('mt', 'upsert')")
    with as_tenant(app, "a"):  # leave A as seeded for the other tests
        app.execute("DELETE FROM pgvector_grpc.mt WHERE id IN ('b-only', 'x3', 'x4')")
        app.execute("UPDATE pgvector_grpc.mt SET content = 'alpha one' WHERE id = 'x1'")
    assert rows_of(app, "a") == {("x1", "alpha one"), ("x2", "alpha two")}


def test_staged_rows_can_take_the_insertion_order_reserved_for_them(app: Conn) -> None:
    """The server reserves a batch's numbers ahead (in stream order) and stages them in seq; rows
    staged without them take the next numbers at INSERT."""
    app.execute(STAGING_DDL)
    reserve = "SELECT pgvector_grpc.reserve_insertion_order('mt', %s)"
    first, second = app.execute(reserve, (2,)).fetchone()[0]  # type: ignore[index]
    assert first < second
    with as_tenant(app, "a"):
        app.execute(
            "INSERT INTO pgvector_grpc_staging (id, content, seq) VALUES ('o2', 'two', %s), ('o1', 'one', %s)",
            (second, first),
        )
        app.execute("SELECT * FROM pgvector_grpc.insert_from_staging('mt', 'fail', staged_order => true)")
    with as_tenant(app, "a"):
        app.execute("INSERT INTO pgvector_grpc_staging (id, content) VALUES ('o3', 'three')")
        app.execute("SELECT * FROM pgvector_grpc.insert_from_staging('mt', 'fail')")
        rows = app.execute("SELECT id, seq FROM pgvector_grpc.mt WHERE id LIKE 'o_' ORDER BY seq").fetchall()
        app.execute("DELETE FROM pgvector_grpc.mt WHERE id LIKE 'o_'")
    assert rows[:2] == [("o1", first), ("o2", second)]
    assert rows[2][0] == "o3" and rows[2][1] > second


def test_single_tenant_collections_are_unchanged(app: Conn) -> None:
    app.execute("SELECT pgvector_grpc.create_collection('st', 3)")
    try:
        row = app.execute(
            "SELECT relrowsecurity, pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'pgvector_grpc.st'::regclass"
        ).fetchone()
        assert row == (False, "pgvector_grpc_owner")
        columns = app.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'pgvector_grpc.st'::regclass AND attnum > 0"
            " AND NOT attisdropped ORDER BY attnum"
        ).fetchall()
        assert "tenant_id" not in {c[0] for c in columns}
        with app.cursor().copy("COPY pgvector_grpc.st (id, content) FROM STDIN") as copy:  # COPY still allowed
            copy.write_row(("s1", "plain"))
        assert app.execute("SELECT id, content FROM pgvector_grpc.st").fetchall() == [("s1", "plain")]
        assert app.execute("SELECT multi_tenant FROM pgvector_grpc.collections WHERE name = 'st'").fetchone() == (
            False,
        )
    finally:
        assert app.execute("SELECT pgvector_grpc.drop_collection('st')").fetchone() == (True,)
