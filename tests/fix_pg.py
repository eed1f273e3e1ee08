"""One PostgreSQL + pgvector per test session; a fresh database per test module.

The session's PostgreSQL is stopped by the fixture's teardown, at exit if teardown never ran (Ctrl-C),
and by its watchdog process if pytest is killed outright."""

from __future__ import annotations

import atexit
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from pgvector_grpc_server.embedded import EmbeddedPostgres
from psycopg.conninfo import make_conninfo


@dataclass
class PgCluster:
    """The session's PostgreSQL: a conninfo per database, plus the embedded server if any."""

    admin_conninfo: str
    embedded: EmbeddedPostgres | None

    def conninfo(self, dbname: str) -> str:
        return make_conninfo(self.admin_conninfo, dbname=dbname)


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgCluster]:
    url = os.environ.get("DATABASE_URL")
    if url:
        yield PgCluster(url, None)
        return
    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data")
    atexit.register(embedded.stop)
    try:
        yield PgCluster(embedded.start(), embedded)
    finally:
        embedded.stop()


def create_database(cluster: PgCluster, name: str) -> str:
    """A new empty database (dropped first if a previous run left it); its conninfo."""
    with psycopg.connect(cluster.admin_conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return cluster.conninfo(name)


def drop_database(cluster: PgCluster, name: str) -> None:
    # FORCE ends the sessions present; a pool still reconnecting can open a new one in between.
    for attempt in range(10):
        try:
            with psycopg.connect(cluster.admin_conninfo, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except psycopg.errors.ObjectInUse:
            if attempt == 9:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def database(pg_cluster: PgCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database for this test module; its conninfo."""
    name = "t_" + re.sub(r"\W", "_", request.module.__name__.rsplit(".", 1)[-1])[:50]
    conninfo = create_database(pg_cluster, name)
    yield conninfo
    drop_database(pg_cluster, name)
