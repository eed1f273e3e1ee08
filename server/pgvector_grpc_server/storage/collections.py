"""The catalogue: creating, reading and dropping collections through sql/'s functions."""

from __future__ import annotations

from typing import Any

from pgvector_grpc_common.vocabulary import HnswIndex, Index, IvfflatIndex, NoIndex, index_of
from psycopg import sql

from pgvector_grpc_server.domain.models import CollectionInfo, CollectionSpec
from pgvector_grpc_server.storage.errors import translated
from pgvector_grpc_server.storage.pool import Pool, fetch_one, transaction_as
from pgvector_grpc_server.storage.routing import ReadRouting, read_all, read_one

_SELECT = (
    "SELECT name, dimension, metric, index_type, hnsw_m, hnsw_ef_construction, ivfflat_lists, multi_tenant,"
    " text_search, index_storage, rerank_factor FROM pgvector_grpc.collections"
)
# Every argument by name: their order is the SQL function's business.
_CREATE = (
    "SELECT pgvector_grpc.create_collection(collection => %(name)s, dimension => %(dimension)s, metric => %(metric)s,"
    " index_type => %(index_type)s, hnsw_m => %(hnsw_m)s, hnsw_ef_construction => %(hnsw_ef_construction)s,"
    " ivfflat_lists => %(ivfflat_lists)s, defer_index => %(defer_index)s, multi_tenant => %(multi_tenant)s,"
    " text_search => %(text_search)s, index_storage => %(index_storage)s, rerank_factor => %(rerank_factor)s)"
)


def _spec(row: tuple[Any, ...]) -> CollectionSpec:
    name, dimension, metric, index_type, m, ef_construction, lists, multi_tenant, text_search, storage, rerank = row
    index = index_of(index_type, m, ef_construction, lists, storage, rerank)
    return CollectionSpec(name, dimension, metric, index, multi_tenant, text_search)


def _index_columns(index: Index) -> dict[str, Any]:
    """The catalogue's columns of an index (rerank_factor only where there is something to re-rank)."""
    columns: dict[str, Any] = {
        "index_type": index.type,
        "hnsw_m": None,
        "hnsw_ef_construction": None,
        "ivfflat_lists": None,
        "index_storage": index.storage,
        "rerank_factor": None if index.storage == "vector" else index.rerank_factor,
    }
    if isinstance(index, HnswIndex):
        columns.update(hnsw_m=index.m, hnsw_ef_construction=index.ef_construction)
    elif isinstance(index, IvfflatIndex):
        columns.update(ivfflat_lists=index.lists)
    return columns


def _index_missing(spec: CollectionSpec) -> sql.Composable:
    """Whether the collection should have a vector index and has none yet (deferred, or IVFFlat)."""
    if isinstance(spec.index, NoIndex):
        return sql.SQL("false")
    return sql.SQL(
        "to_regclass(pg_catalog.format('pgvector_grpc.%I', pgvector_grpc.index_name({}, 'vector'))) IS NULL"
    ).format(sql.Literal(spec.name))


def table(name: str) -> sql.Identifier:
    """The table of a collection, as a quoted identifier."""
    return sql.Identifier("pgvector_grpc", name)


class CollectionStore:
    """Catalogue reads (where ``reads`` routes them) and writes (on ``pool``, the primary)."""

    def __init__(self, pool: Pool, reads: ReadRouting | None = None) -> None:
        self._pool = pool
        self._reads = reads or ReadRouting(pool)

    async def create(self, spec: CollectionSpec, *, defer_index: bool = False) -> None:
        """Create the catalogue row, the table and its indexes in one transaction."""
        async with translated(), transaction_as(self._pool, None) as conn:
            await conn.execute(
                _CREATE,
                {
                    "name": spec.name,
                    "dimension": spec.dimension,
                    "metric": spec.metric,
                    "defer_index": defer_index,
                    "multi_tenant": spec.multi_tenant,
                    "text_search": spec.text_search,
                    **_index_columns(spec.index),
                },
            )

    async def text_search_config(self, name: str) -> str | None:
        """The catalogue's name of a text-search configuration (e.g. ``english`` for
        ``pg_catalog.english``), or None when the database has no such configuration."""
        async with translated():
            row = await fetch_one(self._pool, None, "SELECT pgvector_grpc.text_search_config(%s)", (name,))
        return row[0] if row else None

    async def get(self, name: str) -> CollectionSpec | None:
        """The collection's definition, or None."""
        async with translated():
            row = await read_one(self._reads, None, _SELECT + " WHERE name = %s", (name,))
        return _spec(row) if row else None

    async def list_all(self) -> list[CollectionSpec]:
        """Every collection, by name."""
        async with translated():
            return [_spec(row) for row in await read_all(self._reads, None, _SELECT + " ORDER BY name")]

    async def with_counts(self, specs: list[CollectionSpec], *, tenant: str | None = None) -> list[CollectionInfo]:
        """The collections with their document counts: in a multi-tenant collection, ``tenant``'s
        documents (none without a tenant)."""
        if not specs:
            return []
        counts = sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT {}, count(*), {} FROM {}").format(sql.Literal(s.name), _index_missing(s), table(s.name))
            for s in specs
        )
        if not any(s.multi_tenant for s in specs):
            tenant = None
        async with translated():
            rows = await read_all(self._reads, tenant, counts)
        by_name = {name: (count, pending) for name, count, pending in rows}
        return [CollectionInfo(s, *by_name[s.name]) for s in specs]

    async def build_index(self, name: str, memory: str) -> None:
        """Build the vector index of a collection created with a deferred index (no-op if built).

        An HNSW build is several times faster while its graph fits in ``maintenance_work_mem``; it
        may take minutes, so only the caller's deadline limits it, not the server's statement timeout."""
        build = transaction_as(self._pool, None, settings={"maintenance_work_mem": memory}, cap_ms=0)
        async with translated(), build as conn:
            await conn.execute("SELECT pgvector_grpc.create_vector_index(%s)", (name,))

    async def drop(self, name: str) -> bool:
        """Drop the collection; False if it did not exist."""
        async with translated(), transaction_as(self._pool, None) as conn:
            cur = await conn.execute("SELECT pgvector_grpc.drop_collection(%s)", (name,))
            row = await cur.fetchone()
        return bool(row and row[0])
