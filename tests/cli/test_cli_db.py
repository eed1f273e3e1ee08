"""`pgvector-grpc db` next to a running `serve`: a conninfo psycopg connects with, and the wheel's psql."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.cli.run import cli, error_line, json_of, ok
from tests.processes import Served


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data_dir = tmp_path_factory.mktemp("db") / "pgdata"
    running = Served("--data-dir", str(data_dir))
    yield data_dir
    running.stop()


def test_conninfo_connects_to_the_servers_database(served: Path) -> None:
    conninfo = ok("db", "--data-dir", str(served)).stdout.strip()
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    assert row is not None and row[0]
    described = json_of("db", "--data-dir", str(served))
    assert described["conninfo"] == conninfo
    assert described["data_dir"] == str(served.resolve())


def test_psql_runs_on_it(served: Path) -> None:
    done = ok("db", "--data-dir", str(served), "--psql", "--", "-At", "-c", "SELECT 40 + 2")
    assert done.stdout.strip() == "42"


def test_no_running_database_is_not_found(tmp_path: Path) -> None:
    done = cli("db", "--data-dir", str(tmp_path))
    assert done.returncode == 3
    assert error_line(done).startswith("pgvector-grpc: NOT_FOUND: no embedded PostgreSQL is running in ")
