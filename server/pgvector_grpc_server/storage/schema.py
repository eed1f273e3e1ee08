"""Applies sql/ (idempotent, in file-name order) under an advisory lock."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import psycopg
from psycopg import errors as pg

_LOCK_KEY = 7_473_118_272_015  # any constant shared by every server applying the schema


def sql_dir() -> Path:
    """sql/ inside an installed wheel, or at the top of a source checkout."""
    packaged = Path(str(resources.files("pgvector_grpc_server"))) / "sql"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "sql"


def sql_files() -> list[Path]:
    """The schema files, in the order they are applied."""
    return sorted(sql_dir().glob("*.sql"))


class SchemaNotApplied(RuntimeError):
    """The role given to apply sql/ may not (e.g. it is the server's app role)."""


async def apply_schema(conninfo: str) -> None:
    """Apply every sql/ file in one transaction; concurrent servers wait on the lock."""
    try:
        async with await psycopg.AsyncConnection.connect(conninfo) as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            for path in sql_files():
                await conn.execute(path.read_text().encode())  # trusted files of our own
    except pg.InsufficientPrivilege as exc:
        raise SchemaNotApplied(
            f"this role may not apply sql/ ({exc.diag.message_primary}): give --admin-database-url "
            "(a role that owns the schema or may create roles), or --no-apply-schema if it is applied"
        ) from exc
