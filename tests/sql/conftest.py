"""A module's database with sql/ applied by the admin, and connections AS the app role (as the pool will)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from pgvector.psycopg import register_vector
from pgvector_grpc_server.storage.roles import app_conninfo
from pgvector_grpc_server.storage.schema import sql_files


@pytest.fixture(scope="module")
def admin_db(database: str) -> str:
    """The module's database with every sql/ file applied (twice: idempotent) by the admin."""
    with psycopg.connect(database, autocommit=True) as conn:
        for _ in range(2):
            for path in sql_files():
                conn.execute(path.read_bytes())
    return database


@pytest.fixture(scope="module")
def app_db(admin_db: str) -> str:
    """The conninfo of the app role on the module's database."""
    return app_conninfo(admin_db)


@pytest.fixture
def app(app_db: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection as pgvector_grpc_app, like a pooled one."""
    with psycopg.connect(app_db, autocommit=True) as conn:
        register_vector(conn)
        yield conn


@contextmanager
def as_tenant(
    conn: psycopg.Connection[tuple[object, ...]], tenant: str
) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A transaction whose tenant is ``tenant`` (set_config(..., true): gone at its end)."""
    with conn.transaction():
        conn.execute("SELECT set_config('pgvector_grpc.tenant', %s, true)", (tenant,))
        yield conn
