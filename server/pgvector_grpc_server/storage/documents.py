"""Document rows: binary COPY writes, reads by id / filter / page, updates, deletes, counts and
metadata aggregates."""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import numpy as np
from pgvector_grpc_common.vocabulary import DocumentRecord
from psycopg import AsyncConnection, AsyncCursor, sql
from psycopg import errors as pg
from psycopg.rows import TupleRow
from psycopg.types.numeric import Int8

from pgvector_grpc_server.domain.errors import FailedPrecondition
from pgvector_grpc_server.domain.models import (
    Checkpoint,
    CollectionSpec,
    ConflictPolicy,
    DocumentOrder,
    FieldInfo,
    FieldRange,
    FieldValues,
    Include,
    IngestResult,
    Selection,
)
from pgvector_grpc_server.storage.collections import table
from pgvector_grpc_server.storage.errors import document_exists, translated
from pgvector_grpc_server.storage.filter_jsonpath import compile_filter
from pgvector_grpc_server.storage.pool import (
    JsonText,
    PackedVector,
    Pool,
    execute_counting,
    fetch_one,
    transaction_as,
)
from pgvector_grpc_server.storage.routing import ReadRouting, read_all, read_one

_COLUMNS = sql.SQL("id, content, metadata, embedding, embedding_exact, seq")
# The ValueType of a jsonb value: numbers written with a fraction or exponent are floats.
_VALUE_TYPE = (
    "CASE jsonb_typeof({v}) WHEN 'number' THEN"
    " CASE WHEN {v}::text ~ '[.eE]' THEN 'float' ELSE 'integer' END ELSE jsonb_typeof({v}) END"
)
# The tenant column takes the transaction's tenant ('' without one), and row-level security keeps
# each tenant to its own checkpoints.
_SAVE_CHECKPOINT = (
    "INSERT INTO pgvector_grpc.checkpoints (collection, key, value) VALUES (%s, %s, %s)"
    " ON CONFLICT (collection, tenant, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"
)
# Multi-tenant ingest: COPY FROM is refused on a table with row-level security, so a batch is copied
# into the connection's staging table and moved by INSERT ... SELECT (sql/070_staged_ingest.sql).
_INSERT_FROM_STAGING = "SELECT inserted, written FROM pgvector_grpc.insert_from_staging(%s, %s, true)"
_RESERVE_ORDER = "SELECT pgvector_grpc.reserve_insertion_order(%s, %s)"
_UPSERT_TAIL = {
    "upsert": sql.SQL(
        " ON CONFLICT (id) DO UPDATE SET content = EXCLUDED.content, metadata = EXCLUDED.metadata,"
        " embedding = EXCLUDED.embedding, embedding_exact = EXCLUDED.embedding_exact, updated_at = now()"
        " RETURNING (xmax = 0) AS inserted"
    ),
    "skip": sql.SQL(" ON CONFLICT (id) DO NOTHING RETURNING true AS inserted"),
}


# A document of a batch and its place in the collection's insertion order (seq).
Numbered = tuple[DocumentRecord, int]


def numbered(docs: Sequence[DocumentRecord], order: Sequence[int]) -> list[Numbered]:
    """The batch's documents once each with their insertion order: a repeated id keeps its last
    document at the place of its first."""
    unique: dict[str, Numbered] = {}
    for doc, seq in zip(docs, order, strict=True):
        first = unique.get(doc.id)
        unique[doc.id] = (doc, seq if first is None else first[1])
    return list(unique.values())


def _rows(
    batch: Sequence[Numbered],
) -> Iterator[tuple[str, str | None, JsonText, PackedVector | None, bytes | None, Int8]]:
    """COPY rows; the embeddings are converted to pgvector's big-endian format as one matrix."""
    docs = [doc for doc, _ in batch]
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
    for doc, seq in batch:
        embedding = None
        if doc.embedding is not None:
            embedding = PackedVector(packed[offset : offset + step])
            offset += step
        yield doc.id, doc.content, JsonText(doc.metadata_json or "{}"), embedding, doc.embedding_exact, Int8(seq)


def where_clause(selection: Selection) -> tuple[sql.Composable, list[Any]]:
    """A WHERE clause (or nothing) restricting rows to the selection's ids and filter."""
    parts: list[sql.Composable] = []
    params: list[Any] = []
    if selection.ids is not None:
        parts.append(sql.SQL("id = ANY(%s)"))
        params.append(list(selection.ids))
    if selection.filter is not None:
        compiled = compile_filter(selection.filter)
        parts.append(sql.SQL(compiled.predicate_sql()))
        params.append(compiled.jsonpath)
    if not parts:
        return sql.SQL(""), params
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(parts), params


def select_list(include: Include) -> sql.Composable:
    """id plus the parts asked for (the others come back as NULL), then the exact embedding."""
    return sql.SQL("id, {}, {}, {}").format(
        sql.SQL("content" if include.content else "NULL::text"),
        sql.SQL("metadata::text" if include.metadata else "NULL::text"),
        sql.SQL("embedding, embedding_exact" if include.embedding else "NULL::vector, NULL::bytea"),
    )


def stored(row: Sequence[Any], exact: bytes | None = None) -> DocumentRecord:
    """A DocumentRecord from (id, content, metadata as JSON text, embedding) and the exact values."""
    doc_id, content, metadata, embedding = row[:4]
    if embedding is not None and not isinstance(embedding, np.ndarray):
        embedding = embedding.to_numpy()  # pgvector's binary loader returns a Vector
    vector = None if embedding is None else np.asarray(embedding, dtype=np.float32)
    return DocumentRecord(doc_id, content, metadata or "", vector, None if exact is None else bytes(exact))


class DocumentStore:
    """Reads and writes the documents of collections.

    ``tenant`` is the tenant a call on a multi-tenant collection acts as (None for a single-tenant
    collection): its transaction starts by setting it, and row-level security does the rest.
    Writes and checkpoints use ``pool`` (the primary); reads go where ``reads`` routes them."""

    def __init__(self, pool: Pool, reads: ReadRouting | None = None) -> None:
        self._pool = pool
        self._reads = reads or ReadRouting(pool)

    async def write_batch(
        self,
        spec: CollectionSpec,
        docs: Sequence[DocumentRecord],
        policy: ConflictPolicy,
        checkpoint: Checkpoint | None = None,
        *,
        tenant: str | None = None,
        order: Sequence[int] | None = None,
        on_connected: Callable[[], None] | None = None,
        before_commit: Callable[[], Awaitable[None]] | None = None,
    ) -> IngestResult:
        """Write one batch, and the checkpoint if given, in one transaction; ``on_connected`` is
        called once it holds its connection, ``before_commit`` is awaited last in it (raising rolls
        the batch back).

        ``order`` is the documents' insertion order (seq), reserved with :meth:`reserve_order`;
        without it the batch reserves its own. A repeated id keeps its last occurrence, at the
        place of its first; a replaced document keeps its place. In a single-tenant collection,
        ids not stored yet are copied straight into the table (the fast path of a bulk load); only
        a batch that replaces stored documents goes through the staging table. A multi-tenant
        batch always does (COPY is refused there), and becomes the tenant's rows."""
        async with translated(), transaction_as(self._pool, tenant) as conn:
            if on_connected is not None:
                on_connected()
            if order is None:
                order = await self._reserve(conn, spec, len(docs))
            batch = numbered(docs, order)
            repeated = len(docs) - len(batch)
            if tenant is None:
                result = await self._write(conn, spec, batch, policy, repeated)
            else:
                result = await self._write_as_tenant(conn, spec, batch, policy, repeated)
            if checkpoint is not None:
                await conn.execute(_SAVE_CHECKPOINT, (spec.name, checkpoint.key, checkpoint.value))
            if before_commit is not None:
                await before_commit()
            return result

    async def reserve_order(self, spec: CollectionSpec, count: int) -> list[int]:
        """The next ``count`` numbers of the collection's insertion order, ascending. Reserved
        outside any transaction (nextval is not transactional) and never handed out again: batches
        that reserve in stream order keep that order whatever order they then commit in."""
        async with translated():
            row = await fetch_one(self._pool, None, _RESERVE_ORDER, (spec.name, count))
        assert row is not None
        return list(row[0])

    @staticmethod
    async def _reserve(conn: AsyncConnection[TupleRow], spec: CollectionSpec, count: int) -> list[int]:
        cur = await conn.execute(_RESERVE_ORDER, (spec.name, count))
        row = await cur.fetchone()
        assert row is not None
        return list(row[0])

    async def checkpoint(self, spec: CollectionSpec, key: str, *, tenant: str | None = None) -> str | None:
        """The value last saved under ``key`` for this collection (by this tenant)."""
        async with translated():
            row = await fetch_one(
                self._pool,
                tenant,
                "SELECT value FROM pgvector_grpc.checkpoints WHERE collection = %s AND key = %s",
                (spec.name, key),
            )
        return None if row is None else str(row[0])

    async def _write(
        self,
        conn: AsyncConnection[TupleRow],
        spec: CollectionSpec,
        batch: list[Numbered],
        policy: ConflictPolicy,
        repeated: int,
    ) -> IngestResult:
        target = table(spec.name)
        if policy == "fail":
            await self._copy(conn, target, batch)
            return IngestResult(len(batch), 0, repeated)
        ids = [doc.id for doc, _ in batch]
        cur = await conn.execute(sql.SQL("SELECT id FROM {} WHERE id = ANY(%s)").format(target), (ids,))
        stored = {row[0] for row in await cur.fetchall()}
        fresh = [(doc, seq) for doc, seq in batch if doc.id not in stored]
        if policy == "skip" or not stored:
            try:
                async with conn.transaction():  # a savepoint: a concurrent writer may win an id
                    await self._copy(conn, target, fresh)
                return IngestResult(len(fresh), 0, repeated + len(batch) - len(fresh))
            except pg.UniqueViolation:
                pass
        return await self._staged(conn, target, batch, policy, repeated)

    @classmethod
    async def _write_as_tenant(
        cls,
        conn: AsyncConnection[TupleRow],
        spec: CollectionSpec,
        batch: list[Numbered],
        policy: ConflictPolicy,
        repeated: int,
    ) -> IngestResult:
        await cls._copy(conn, sql.Identifier("pgvector_grpc_staging"), batch)
        if policy == "fail":
            cur = await cls._insert_or_name_the_duplicate(conn, spec)
        else:
            cur = await conn.execute(_INSERT_FROM_STAGING, (spec.name, policy))
        row = await cur.fetchone()
        inserted, written = row if row else (0, 0)
        if policy == "upsert":
            return IngestResult(inserted, written - inserted, repeated)
        return IngestResult(inserted, 0, repeated + len(batch) - inserted)

    @staticmethod
    async def _insert_or_name_the_duplicate(
        conn: AsyncConnection[TupleRow], spec: CollectionSpec
    ) -> AsyncCursor[TupleRow]:
        """insert_from_staging(..., 'fail'); on a duplicate, AlreadyExists naming the first id the
        tenant holds. PostgreSQL leaves the key out of the error on a table with row-level security,
        so it is looked up after rolling back to a savepoint (the staged rows stay)."""
        try:
            async with conn.transaction():
                return await conn.execute(_INSERT_FROM_STAGING, (spec.name, "fail"))
        except pg.UniqueViolation:
            cur = await conn.execute(
                sql.SQL("SELECT min(s.id) FROM pgvector_grpc_staging s JOIN {} d ON d.id = s.id").format(
                    table(spec.name)
                )
            )
            row = await cur.fetchone()
            raise document_exists("" if row is None or row[0] is None else str(row[0])) from None

    @staticmethod
    async def _copy(conn: AsyncConnection[TupleRow], into: sql.Composable, batch: Sequence[Numbered]) -> None:
        copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(into, _COLUMNS)
        async with conn.cursor().copy(copy) as cp:
            for row in _rows(batch):
                await cp.write_row(row)

    @classmethod
    async def _staged(
        cls,
        conn: AsyncConnection[TupleRow],
        target: sql.Identifier,
        batch: list[Numbered],
        policy: ConflictPolicy,
        repeated: int,
    ) -> IngestResult:
        await cls._copy(conn, sql.Identifier("pgvector_grpc_staging"), batch)
        insert = sql.SQL(
            "WITH w AS (INSERT INTO {} ({}) SELECT {} FROM pgvector_grpc_staging{}) "
            "SELECT count(*) FILTER (WHERE inserted), count(*) FROM w"
        ).format(target, _COLUMNS, _COLUMNS, _UPSERT_TAIL[policy])
        cur = await conn.execute(insert)
        row = await cur.fetchone()
        inserted, written = row if row else (0, 0)
        if policy == "upsert":
            return IngestResult(inserted, written - inserted, repeated)
        return IngestResult(inserted, 0, repeated + len(batch) - inserted)

    async def get(
        self, spec: CollectionSpec, ids: Sequence[str], include: Include, *, tenant: str | None = None
    ) -> list[DocumentRecord]:
        """The documents with these ids, in the order asked; missing ones left out."""
        query = sql.SQL("SELECT {} FROM {} WHERE id = ANY(%s)").format(select_list(include), table(spec.name))
        async with translated():
            found = {row[0]: stored(row, row[4]) for row in await read_all(self._reads, tenant, query, (list(ids),))}
        return [found[i] for i in dict.fromkeys(ids) if i in found]

    async def delete(self, spec: CollectionSpec, selection: Selection, *, tenant: str | None = None) -> int:
        """Delete the selected documents (all of them when neither ids nor filter is given)."""
        where, params = where_clause(selection)
        query = sql.SQL("DELETE FROM {}").format(table(spec.name)) + where
        async with translated():
            return await execute_counting(self._pool, tenant, query, params)

    async def count(self, spec: CollectionSpec, selection: Selection, *, tenant: str | None = None) -> int:
        """The number of selected documents."""
        where, params = where_clause(selection)
        query = sql.SQL("SELECT count(*) FROM {}").format(table(spec.name)) + where
        async with translated():
            row = await read_one(self._reads, tenant, query, params)
        return int(row[0]) if row else 0

    async def page(
        self,
        spec: CollectionSpec,
        selection: Selection,
        order: DocumentOrder,
        after: str | int | None,
        limit: int,
        include: Include,
        *,
        tenant: str | None = None,
    ) -> list[tuple[DocumentRecord, str | int]]:
        """Up to ``limit`` selected documents after position ``after``, each with its position:
        the id (byte order) or the insertion sequence number."""
        key = "id" if order == "id" else "seq"
        where, params = where_clause(selection)
        if after is not None:
            condition = sql.SQL("{} > %s").format(sql.Identifier(key))
            where = (where + sql.SQL(" AND ") + condition) if params else sql.SQL(" WHERE ") + condition
            params.append(after)
        query = (
            sql.SQL("SELECT {}, {} FROM {}").format(select_list(include), sql.Identifier(key), table(spec.name))
            + where
            + sql.SQL(" ORDER BY {} LIMIT %s").format(sql.Identifier(key))
        )
        async with translated():
            rows = await read_all(self._reads, tenant, query, [*params, limit])
        return [(stored(row, row[4]), row[5]) for row in rows]

    async def update_metadata(
        self, spec: CollectionSpec, selection: Selection, patch_json: str, *, tenant: str | None = None
    ) -> int:
        """Set the top-level keys of ``patch_json`` on the selected documents; their number."""
        where, params = where_clause(selection)
        query = sql.SQL("UPDATE {} SET metadata = metadata || %s::jsonb, updated_at = now()").format(table(spec.name))
        async with translated(), transaction_as(self._pool, tenant) as conn:
            cur = await conn.execute(query + where, [patch_json, *params])
            return cur.rowcount

    async def describe_metadata(
        self, spec: CollectionSpec, selection: Selection, *, tenant: str | None = None
    ) -> list[FieldInfo]:
        """Top-level keys of the selected documents with document counts per value type."""
        where, params = where_clause(selection)
        value_type = sql.SQL(_VALUE_TYPE.format(v="e.value"))
        query = (
            sql.SQL("SELECT e.key, {} AS kind, count(*) FROM {}, jsonb_each(metadata) e").format(
                value_type, table(spec.name)
            )
            + where
            + sql.SQL(" GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2")
        )
        async with translated():
            rows = await read_all(self._reads, tenant, query, params)
        fields: dict[str, list[Any]] = {}
        for name, kind, count in rows:
            fields.setdefault(name, []).append((kind, int(count)))
        return [FieldInfo(name, tuple(types)) for name, types in fields.items()]

    async def field_values(
        self,
        spec: CollectionSpec,
        selection: Selection,
        path: Sequence[str],
        search_term: str,
        offset: int,
        limit: int,
        *,
        tenant: str | None = None,
    ) -> FieldValues:
        """A page of the field's distinct non-null values in the selected documents (a value is
        its type and JSON value)."""
        where, params = where_clause(selection)
        value_type = sql.SQL(_VALUE_TYPE.format(v="x"))
        values = (
            sql.SQL("SELECT DISTINCT {} AS kind, x FROM (SELECT metadata #> %s AS x FROM {}").format(
                value_type, table(spec.name)
            )
            + where
            + sql.SQL(
                ") s WHERE x IS NOT NULL AND jsonb_typeof(x) <> 'null'"
                " AND (%s = '' OR strpos(lower(x #>> '{}'), lower(%s)) > 0)"
            )
        )
        query = (
            sql.SQL("WITH v AS (")
            + values
            + sql.SQL(
                ") SELECT (SELECT count(*) FROM v), ARRAY(SELECT x::text FROM v"
                " ORDER BY (x #>> '{}') COLLATE \"C\", kind OFFSET %s LIMIT %s)"
            )
        )
        async with translated():
            row = await read_one(
                self._reads, tenant, query, [list(path), *params, search_term, search_term, offset, limit]
            )
        assert row is not None
        return FieldValues(list(row[1]), int(row[0]))

    async def field_range(
        self, spec: CollectionSpec, selection: Selection, path: Sequence[str], *, tenant: str | None = None
    ) -> FieldRange | None:
        """The smallest and largest scalar value of the field in the selected documents, or None
        when they have none."""
        where, params = where_clause(selection)
        scalars = sql.SQL("SELECT metadata #> %s AS x FROM {}").format(table(spec.name)) + where
        order = sql.SQL("CASE WHEN jsonb_typeof(x) = 'string' THEN (x #>> '{}') COLLATE \"C\" END")
        query = (
            sql.SQL("WITH s AS (SELECT x FROM (")
            + scalars
            + sql.SQL(") v WHERE jsonb_typeof(x) IN ('number', 'string', 'boolean'))")
            + sql.SQL(
                " SELECT ARRAY(SELECT DISTINCT jsonb_typeof(x) FROM s ORDER BY 1),"
                " (SELECT x::text AS low FROM s ORDER BY {o}, x LIMIT 1),"
                " (SELECT x::text AS high FROM s ORDER BY {o} DESC, x DESC LIMIT 1)"
            ).format(o=order)
        )
        async with translated():
            row = await read_one(self._reads, tenant, query, [list(path), *params])
        assert row is not None
        kinds, low, high = row
        if not kinds:
            return None
        if len(kinds) > 1:
            raise FailedPrecondition(
                f"field {'.'.join(path)!r} mixes {', '.join(kinds)} values, which have no common order",
                "MIXED_TYPES",
            )
        return FieldRange(low, high)
