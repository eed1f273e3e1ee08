"""sql/supabase/: the guide's per-user documents table and match_documents, proved on the embedded
PostgreSQL with a stand-in for Supabase's auth schema, called as PostgREST does (role authenticated,
the JWT's claims set per transaction)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pgvector_grpc_server.storage.roles import app_conninfo
from pgvector_grpc_server.storage.schema import sql_dir
from psycopg import errors

Conn = psycopg.Connection[tuple[Any, ...]]

ALICE, BOB = uuid.UUID(int=1), uuid.UUID(int=2)
DIM = 1536
MATCH = "SELECT id, content FROM public.match_documents(%s::extensions.vector, 0.5, 10{})"


def vec(*head: float) -> str:
    return json.dumps([*head, *([0.0] * (DIM - len(head)))])


@pytest.fixture(scope="module")
def supabase_db(database: str) -> str:
    """The module's database as a Supabase project with the migration applied (twice: idempotent)."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute((Path(__file__).parent / "supabase_standin.sql").read_bytes())
        for _ in range(2):
            conn.execute((sql_dir() / "supabase" / "001_documents.sql").read_bytes())
        conn.execute("INSERT INTO auth.users VALUES (%s), (%s) ON CONFLICT DO NOTHING", (ALICE, BOB))
    return database


@pytest.fixture
def api(supabase_db: str) -> Iterator[Conn]:
    """A connection as PostgREST's authenticator."""
    with psycopg.connect(app_conninfo(supabase_db, "authenticator"), autocommit=True) as conn:
        yield conn


@contextmanager
def as_user(conn: Conn, user: uuid.UUID | None) -> Iterator[Conn]:
    """One request: a transaction as role authenticated (or anon) with the JWT's claims, as PostgREST does."""
    role = "anon" if user is None else "authenticated"
    claims = {"role": role} if user is None else {"sub": str(user), "role": role}
    with conn.transaction():
        conn.execute(f"SET LOCAL ROLE {role}")
        conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
        yield conn


@pytest.fixture(scope="module", autouse=True)
def documents(supabase_db: str) -> None:
    with psycopg.connect(app_conninfo(supabase_db, "authenticator"), autocommit=True) as conn:
        for user, rows in (
            (ALICE, [("d1", "alice one", vec(1.0)), ("d2", "alice two", vec(0.9, 0.1))]),
            (BOB, [("d1", "bob one", vec(1.0)), ("bob-only", "bob secret", vec(1.0, 0.05))]),
        ):
            with as_user(conn, user):
                for row in rows:  # user_id from its default, auth.uid()
                    conn.execute("INSERT INTO public.documents (id, content, embedding) VALUES (%s, %s, %s)", row)


def test_the_table_is_per_user_and_forces_row_level_security(api: Conn) -> None:
    row = api.execute(
        "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'public.documents'::regclass"
    ).fetchone()
    assert row == (True, True)
    assert api.execute("SELECT has_table_privilege('authenticated', 'public.documents', 'TRUNCATE')").fetchone() == (
        False,
    )


def test_each_user_matches_only_their_documents(api: Conn) -> None:
    with as_user(api, ALICE):
        assert api.execute(MATCH.format(""), (vec(1.0),)).fetchall() == [("d1", "alice one"), ("d2", "alice two")]
        assert api.execute(MATCH.format(", user_id => %s"), (vec(1.0), BOB)).fetchall() == []
        assert api.execute("SELECT count(*) FROM public.documents").fetchone() == (2,)
        assert api.execute("SELECT 1 FROM public.documents WHERE content LIKE 'bob%'").fetchall() == []
    with as_user(api, BOB):
        found = api.execute(MATCH.format(", user_id => %s"), (vec(1.0), BOB)).fetchall()
        assert found == [("d1", "bob one"), ("bob-only", "bob secret")]
        assert api.execute(MATCH.format(", filter => '{\"x\": 1}'"), (vec(1.0),)).fetchall() == []


def test_a_user_cannot_change_another_users_documents(api: Conn) -> None:
    with as_user(api, ALICE):
        assert api.execute("UPDATE public.documents SET content = 'mine' WHERE id = 'bob-only'").rowcount == 0
        assert api.execute("DELETE FROM public.documents WHERE id = 'bob-only'").rowcount == 0
    for statement in (
        f"INSERT INTO public.documents (user_id, id) VALUES ('{BOB}', 'planted')",
        f"UPDATE public.documents SET user_id = '{BOB}' WHERE id = 'd1'",
    ):
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"), as_user(api, ALICE):
            api.execute(statement)
    with as_user(api, BOB):
        assert api.execute("SELECT id, content FROM public.documents ORDER BY id").fetchall() == [
            ("bob-only", "bob secret"),
            ("d1", "bob one"),
        ]


def test_signed_out_and_unidentified_callers_get_nothing(api: Conn) -> None:
    with pytest.raises(errors.InsufficientPrivilege), as_user(api, None):  # anon: no privileges at all
        api.execute("SELECT count(*) FROM public.documents")
    with pytest.raises(errors.InsufficientPrivilege), as_user(api, None):
        api.execute(MATCH.format(""), (vec(1.0),))
    with api.transaction():  # authenticated without a sub: auth.uid() is NULL
        api.execute("SET LOCAL ROLE authenticated")
        assert api.execute("SELECT count(*) FROM public.documents").fetchone() == (0,)
    with pytest.raises(errors.InsufficientPrivilege), as_user(api, ALICE):
        api.execute("TRUNCATE public.documents")


def test_the_claims_end_with_the_request(api: Conn) -> None:
    with as_user(api, ALICE):
        assert api.execute("SELECT auth.uid()").fetchone() == (ALICE,)
    after = "SELECT current_user, current_setting('request.jwt.claims', true)"
    assert api.execute(after).fetchone() == ("authenticator", "")
    with api.transaction():
        api.execute("SET LOCAL ROLE authenticated")
        assert api.execute("SELECT auth.uid(), count(*) FROM public.documents").fetchone() == (None, 0)
