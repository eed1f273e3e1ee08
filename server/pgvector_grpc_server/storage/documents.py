"""Document rows: binary COPY writes, reads by id / filter / page, deletes and counts."""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from psycopg import AsyncConnection, sql
from psycopg import errors as pg
from psycopg.rows import TupleRow

from pgvector_grpc_server.domain.models import (
    Checkpoint,
    CollectionSpec,
    ConflictPolicy,
    DocumentRecord,
    Filter,
    Include,
    IngestResult,
    StoredDocument,
)
from pgvector_grpc_server.storage.collections import table
from pgvector_grpc_server.storage.errors import translated
from pgvector_grpc_server.storage.filter_jsonpath import to_jsonpath
from pgvector_grpc_server.storage.pool import JsonText, PackedVector, Pool, limit_to_deadline

_COLUMNS = sql.SQL("id, content, metadata, embedding")
_SAVE_CHECKPOINT = (
    "INSERT INTO pgvector_grpc.checkpoints (collection, key, value) VALUES (%s, %s, %s)"
    " ON CONFLICT (collection, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"
)
_UPSERT_TAIL = {
    "upsert": sql.SQL(
        " ON CONFLICT (id) DO UPDATE SET content = EXCLUDED.content, metadata = EXCLUDED.metadata,"
        " embedding = EXCLUDED.embedding, updated_at = now() RETURNING (xmax = 0) AS inserted"
    ),
    "skip": sql.SQL(" ON CONFLICT (id) DO NOTHING RETURNING true AS inserted"),
}


def _rows(docs: Sequence[DocumentRecord]) -> Iterator[tuple[str, str | None, JsonText, PackedVector | None]]:
    """COPY rows; the embeddings are converted to pgvector's big-endian format as one matrix."""
    vectors = [doc.embedding for doc in docs if doc.embedding is not None]
    packed = b""
    step = 0
    if vectors:
        dim = vectors[0].shape[0]
        rows = np.empty((len(vectors), 4 + 4 * dim), dtype=np.uint8)  # per row: header, big-endian floats
        rows[:, :4] = np.frombuffer(struct.pack(">HH", dim, 0), dtype=np.uint8)
        rows[:, 4:].view(">f4")[...] = np.array(vectors, dtype=np.float32)
        packed, step = rows.tobytes(), rows.shape[1]
    offset = 0
    for doc in docs:
        embedding = None
        if doc.embedding is not None:
            embedding = PackedVector(packed[offset : offset + step])
            offset += step
        yield doc.id, doc.content, JsonText(doc.metadata_json or "{}"), embedding


def where_clause(ids: Sequence[str] | None, filter: Filter | None) -> tuple[sql.Composable, list[Any]]:
    """A WHERE clause (or nothing) restricting rows to ``ids`` and to ``filter``."""
    parts: list[sql.Composable] = []
    params: list[Any] = []
    if ids is not None:
        parts.append(sql.SQL("id = ANY(%s)"))
        params.append(list(ids))
    if filter is not None:
        parts.append(sql.SQL("metadata @@ %s::jsonpath"))
        params.append(to_jsonpath(filter))
    if not parts:
        return sql.SQL(""), params
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(parts), params


def select_list(include: Include) -> sql.Composable:
    """id plus the parts asked for; the others come back as NULL."""
    return sql.SQL("id, {}, {}, {}").format(
        sql.SQL("content" if include.content else "NULL::text"),
        sql.SQL("metadata::text" if include.metadata else "NULL::text"),
        sql.SQL("embedding" if include.embedding else "NULL::vector"),
    )


def stored(row: Sequence[Any]) -> StoredDocument:
    """A StoredDocument from (id, content, metadata as JSON text, embedding)."""
    doc_id, content, metadata, embedding = row[:4]
    if embedding is not None and not isinstance(embedding, np.ndarray):
        embedding = embedding.to_numpy()  # pgvector's binary loader returns a Vector
    vector = None if embedding is None else np.asarray(embedding, dtype=np.float32)
    return StoredDocument(doc_id, content, metadata or "", vector)


class DocumentStore:
    """Reads and writes the documents of collections."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def write_batch(
        self,
        spec: CollectionSpec,
        docs: Sequence[DocumentRecord],
        policy: ConflictPolicy,
        checkpoint: Checkpoint | None = None,
    ) -> IngestResult:
        """Write one batch, and the checkpoint if given, in one transaction.

        A repeated id keeps its last occurrence. Ids not stored yet are copied straight into the
        table (the fast path of a bulk load); only a batch that replaces stored documents goes
        through the staging table."""
        async with translated(), self._pool.connection() as conn, conn.transaction():
            await limit_to_deadline(conn)
            result = await self._write(conn, spec, docs, policy)
            if checkpoint is not None:
                await conn.execute(_SAVE_CHECKPOINT, (spec.name, checkpoint.key, checkpoint.value))
            return result

    async def checkpoint(self, spec: CollectionSpec, key: str) -> str | None:
        """The value last saved under ``key`` for this collection."""
        async with translated(), self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT value FROM pgvector_grpc.checkpoints WHERE collection = %s AND key = %s", (spec.name, key)
            )
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def _write(
        self,
        conn: AsyncConnection[TupleRow],
        spec: CollectionSpec,
        docs: Sequence[DocumentRecord],
        policy: ConflictPolicy,
    ) -> IngestResult:
        unique = {doc.id: doc for doc in docs}
        repeated = len(docs) - len(unique)
        target = table(spec.name)
        if policy == "fail":
            await self._copy(conn, target, list(unique.values()))
            return IngestResult(len(unique), 0, repeated)
        cur = await conn.execute(sql.SQL("SELECT id FROM {} WHERE id = ANY(%s)").format(target), (list(unique),))
        stored = {row[0] for row in await cur.fetchall()}
        fresh = [doc for doc_id, doc in unique.items() if doc_id not in stored]
        if policy == "skip" or not stored:
            try:
                async with conn.transaction():  # a savepoint: a concurrent writer may win an id
                    await self._copy(conn, target, fresh)
                return IngestResult(len(fresh), 0, repeated + len(unique) - len(fresh))
            except pg.UniqueViolation:
                pass
        return await self._staged(conn, target, list(unique.values()), policy, repeated)

    @staticmethod
    async def _copy(conn: AsyncConnection[TupleRow], into: sql.Composable, docs: list[DocumentRecord]) -> None:
        copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(into, _COLUMNS)
        async with conn.cursor().copy(copy) as cp:
            for row in _rows(docs):
                await cp.write_row(row)

    @classmethod
    async def _staged(
        cls,
        conn: AsyncConnection[TupleRow],
        target: sql.Identifier,
        docs: list[DocumentRecord],
        policy: ConflictPolicy,
        repeated: int,
    ) -> IngestResult:
        await cls._copy(conn, sql.Identifier("pgvector_grpc_staging"), docs)
        insert = sql.SQL(
            "WITH w AS (INSERT INTO {} ({}) SELECT {} FROM pgvector_grpc_staging{}) "
            "SELECT count(*) FILTER (WHERE inserted), count(*) FROM w"
        ).format(target, _COLUMNS, _COLUMNS, _UPSERT_TAIL[policy])
        cur = await conn.execute(insert)
        row = await cur.fetchone()
        inserted, written = row if row else (0, 0)
        if policy == "upsert":
            return IngestResult(inserted, written - inserted, repeated)
        return IngestResult(inserted, 0, repeated + len(docs) - inserted)

    async def get(self, spec: CollectionSpec, ids: Sequence[str], include: Include) -> list[StoredDocument]:
        """The documents with these ids, in the order asked; missing ones left out."""
        query = sql.SQL("SELECT {} FROM {} WHERE id = ANY(%s)").format(select_list(include), table(spec.name))
        async with translated(), self._pool.connection() as conn:
            cur = await conn.execute(query, (list(ids),))
            found = {row[0]: stored(row) for row in await cur.fetchall()}
        return [found[i] for i in dict.fromkeys(ids) if i in found]

    async def delete(self, spec: CollectionSpec, ids: Sequence[str] | None, filter: Filter | None) -> int:
        """Delete matching documents (all of them when neither ids nor filter is given)."""
        where, params = where_clause(ids, filter)
        query = sql.SQL("DELETE FROM {}").format(table(spec.name)) + where
        async with translated(), self._pool.connection() as conn:
            cur = await conn.execute(query, params)
            return cur.rowcount

    async def count(self, spec: CollectionSpec, filter: Filter | None) -> int:
        """The number of matching documents."""
        where, params = where_clause(None, filter)
        query = sql.SQL("SELECT count(*) FROM {}").format(table(spec.name)) + where
        async with translated(), self._pool.connection() as conn:
            cur = await conn.execute(query, params)
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def page(
        self, spec: CollectionSpec, filter: Filter | None, after: str | None, limit: int, include: Include
    ) -> list[StoredDocument]:
        """Up to ``limit`` matching documents with ids after ``after``, in id (byte) order."""
        where, params = where_clause(None, filter)
        if after is not None:
            where = (where + sql.SQL(" AND id > %s")) if params else sql.SQL(" WHERE id > %s")
            params.append(after)
        query = (
            sql.SQL("SELECT {} FROM {}").format(select_list(include), table(spec.name))
            + where
            + sql.SQL(" ORDER BY id LIMIT %s")
        )
        async with translated(), self._pool.connection() as conn:
            cur = await conn.execute(query, [*params, limit])
            return [stored(row) for row in await cur.fetchall()]
