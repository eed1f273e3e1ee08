"""Nearest-neighbour search through the SQL function pgvector_grpc.search_documents."""

from __future__ import annotations

from pgvector_grpc_server.domain.models import Hit, SearchQuery
from pgvector_grpc_server.storage.documents import stored
from pgvector_grpc_server.storage.errors import translated
from pgvector_grpc_server.storage.filter_jsonpath import compile_filter
from pgvector_grpc_server.storage.pool import Pool, fetch_all

# One round trip: the function sets ef_search, the iterative scan and, on a multi-tenant collection,
# the tenant for this transaction only (in autocommit: this statement), first thing.
SEARCH_SQL = (
    "SELECT id, content, metadata::text, embedding, similarity, distance, embedding_exact"
    " FROM pgvector_grpc.search_documents(%s, %s, %s, %s::jsonpath, %s, %s, %s,"
    " filter_tz => %s, filter_document => %s, tenant => %s)"
)


class SearchStore:
    """Runs searches."""

    def __init__(self, pool: Pool, default_ef_search: int) -> None:
        self._pool = pool
        self._default_ef_search = default_ef_search

    async def search(self, query: SearchQuery, *, tenant: str | None = None) -> list[Hit]:
        """The query's hits, closest first; on a multi-tenant collection, among ``tenant``'s documents."""
        compiled = None if query.filter is None else compile_filter(query.filter)
        params = (
            query.collection,
            query.embedding,
            query.top_k,
            None if compiled is None else compiled.jsonpath,
            query.min_similarity,
            query.ef_search or self._default_ef_search,
            query.include.embedding,
            compiled is not None and compiled.timestamps,
            compiled is not None and compiled.on_document,
            tenant,
        )
        # The tenant is set by search_documents itself (see SEARCH_SQL), not by a statement of its own;
        # exact search's planner setting, like the deadline, ends with the statement (fetch_all).
        settings = {"enable_indexscan": "off"} if query.exact else None
        async with translated():
            rows = await fetch_all(self._pool, None, SEARCH_SQL, params, binary=True, settings=settings)
        include = query.include
        hits = []
        for row in rows:
            doc = stored(row, row[6])
            if not include.content:
                doc.content = None
            if not include.metadata:
                doc.metadata_json = ""
            hits.append(Hit(doc, float(row[4]), float(row[5])))
        return hits
