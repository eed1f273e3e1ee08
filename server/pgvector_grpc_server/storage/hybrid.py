"""Hybrid and keyword search: the plans of pgvector_grpc.search_documents with a query text, inlined.

A hybrid search ranks the documents twice in one statement - by distance to the query embedding
(search.py's index walk, exact scan or selectivity switch) and by keyword relevance (``ts_rank_cd``
of the generated ``content_tsv`` column, found through its GIN index) - each ranking taking the
same number of candidates, and fuses the two by reciprocal rank fusion. Both rankings read the table
with the same filter, and row-level security holds for both as for any read of it. A keyword search
is the keyword ranking alone. The plain vector search keeps its own statements (search.py).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pgvector_grpc_common.vocabulary import Metric, VectorStorage
from psycopg import sql

from pgvector_grpc_server.domain.models import CollectionSpec, Hit, SearchMode, SearchQuery, SearchResult
from pgvector_grpc_server.storage.documents import stored
from pgvector_grpc_server.storage.errors import translated
from pgvector_grpc_server.storage.pool import Pool
from pgvector_grpc_server.storage.routing import ReadRouting, read_all
from pgvector_grpc_server.storage.search import (
    _OPERATORS,
    _SCORES,
    SWITCH_CTES,
    PlanMemory,
    SearchStatement,
    _conditions,
    ef_search_of,
    nearest_rows,
    probes_of,
    rerank_factor,
    search_settings,
    switch_walk,
    vector_plan,
)

# What a search with a query text returns, over the ranked rows (`row_id`) joined to the table `d`:
# search.py's columns - the similarity and distance computed for every hit that has an embedding,
# whichever ranking found it - then exhaustive, the keyword rank and the score hits are ordered by.
_RESULT_COLUMNS = """d.id, d.content, d.metadata::text,
       CASE WHEN %(include_embedding)s THEN d.embedding END,
       {similarity}, {distance},
       CASE WHEN %(include_embedding)s THEN d.embedding_exact END"""

# websearch_to_tsquery never fails on user input: words, "quoted phrases", OR and -excluded words.
_TEXT_QUERY = """text_query AS MATERIALIZED (
    SELECT websearch_to_tsquery(%(text_search)s::regconfig, %(query_text)s) AS query)"""

# The keyword ranking: every matching document's relevance is computed (the GIN index finds them),
# the best %(top_k)s kept. Exact, like the exact scan: hybrid search is as exhaustive as its vector side.
_KEYWORD_SIDE = """keyword_side AS MATERIALIZED (
    SELECT m.row_id, m.relevance, row_number() OVER (ORDER BY m.relevance DESC, m.id) AS rank
    FROM (SELECT d.ctid AS row_id, d.id, ts_rank_cd(d.content_tsv, t.query)::float8 AS relevance
          FROM {table} d, text_query t
          WHERE d.content_tsv @@ t.query{condition}
          ORDER BY relevance DESC, d.id LIMIT %(top_k)s) m)"""

# The vector ranking over search.py's nearest rows (row_id, id, distance); %(top_k)s, their LIMIT
# there, is the number of candidates of each ranking here.
_VECTOR_SIDE = """vector_side AS MATERIALIZED (
    SELECT n.row_id, row_number() OVER (ORDER BY n.distance, n.id) AS rank
    FROM {nearest} n
    WHERE %(min_similarity)s::float8 IS NULL OR {similarity} >= %(min_similarity)s::float8)"""

# Reciprocal rank fusion: a term for each ranking that holds the document.
_HYBRID = """
WITH {vector_ctes},
{text_query},
{keyword_side},
fused AS (
    SELECT coalesce(v.row_id, k.row_id) AS row_id, k.rank AS keyword_rank,
           coalesce(%(vector_weight)s::float8 / (%(rrf_k)s::float8 + v.rank), 0)
           + coalesce(%(keyword_weight)s::float8 / (%(rrf_k)s::float8 + k.rank), 0) AS score
    FROM vector_side v FULL JOIN keyword_side k ON k.row_id = v.row_id)
SELECT {columns}, {exhaustive}, f.keyword_rank, f.score
FROM fused f JOIN {table} d ON d.ctid = f.row_id
ORDER BY f.score DESC, d.id
LIMIT %(hits)s"""

_KEYWORD = """
WITH {text_query},
{keyword_side}
SELECT {columns}, true, k.rank, k.relevance
FROM keyword_side k JOIN {table} d ON d.ctid = k.row_id
ORDER BY k.rank"""


@lru_cache(maxsize=1024)
def text_search_sql(
    collection: str,
    metric: Metric,
    filter_form: str,
    mode: SearchMode,
    plan: str,
    storage: VectorStorage = "vector",
    dimension: int = 0,
) -> bytes:
    """The statement of a hybrid or keyword search on ``collection``; ``filter_form``, ``plan`` (of
    the vector ranking: "walk", "scan" or "switch"), ``storage`` and ``dimension`` as in
    :func:`search_sql` (a compact index's walk re-ranks its candidates by exact distance)."""
    indexed = _conditions(filter_form)[0]
    table = sql.Identifier("pgvector_grpc", collection)
    op = sql.SQL(_OPERATORS[metric])
    distance = sql.SQL("(d.embedding {op} %(query)s)::float8").format(op=op)
    columns = sql.SQL(_RESULT_COLUMNS).format(
        similarity=sql.SQL(_SCORES[metric].format("{}")).format(distance), distance=distance
    )
    keyword_side = sql.SQL(_KEYWORD_SIDE).format(
        table=table, condition=sql.SQL("" if not filter_form else " AND " + indexed)
    )
    if mode == "keyword":
        statement = sql.SQL(_KEYWORD).format(
            text_query=sql.SQL(_TEXT_QUERY), keyword_side=keyword_side, columns=columns, table=table
        )
        return statement.as_bytes(None)
    similarity = sql.SQL(_SCORES[metric].format("n.distance"))
    if plan == "switch":
        walk = switch_walk(metric, storage, dimension, table, filter_form)
        nearest_ctes = sql.SQL(SWITCH_CTES).format(op=op, table=table, indexed_condition=sql.SQL(indexed), walk=walk)
        vector_side = sql.SQL(_VECTOR_SIDE).format(nearest=sql.SQL("nearest"), similarity=similarity)
        vector_ctes = sql.SQL("{},\n{}").format(nearest_ctes, vector_side)
        exhaustive = sql.SQL("(SELECT exhaustive FROM plan)")
    else:
        nearest = nearest_rows(metric, storage, dimension, table, filter_form, plan)
        vector_ctes = sql.SQL(_VECTOR_SIDE).format(nearest=sql.SQL("({})").format(nearest), similarity=similarity)
        exhaustive = sql.SQL("%(exhaustive)s")
    statement = sql.SQL(_HYBRID).format(
        vector_ctes=vector_ctes,
        text_query=sql.SQL(_TEXT_QUERY),
        keyword_side=keyword_side,
        columns=columns,
        exhaustive=exhaustive,
        table=table,
    )
    return statement.as_bytes(None)


def text_search_statement(
    spec: CollectionSpec,
    query: SearchQuery,
    mode: SearchMode,
    ef_search: int,
    plans: PlanMemory,
    tenant: str | None = None,
) -> SearchStatement:
    """The statement of a hybrid or keyword ``query`` on the collection ``spec`` (which has a
    full-text index) as ``tenant``."""
    chosen = vector_plan(spec, query, ef_search, plans, tenant, exact=mode == "keyword")
    compiled, plan = chosen.compiled, chosen.plan
    fusion = query.fusion
    params: dict[str, Any] = {
        "collection": spec.name,
        "query": query.embedding,
        "top_k": query.top_k if mode == "keyword" else fusion.candidates_for(query.top_k),
        "candidates": fusion.candidates_for(query.top_k) * rerank_factor(spec, query),
        "hits": query.top_k,
        "ef": ef_search,
        "filter": None if compiled is None else compiled.jsonpath,
        "min_similarity": query.min_similarity,
        "include_embedding": query.include.embedding,
        "exhaustive": plan == "scan",
        "text_search": spec.text_search,
        "query_text": query.query_text,
        "rrf_k": fusion.rrf_k,
        "vector_weight": fusion.vector_weight,
        "keyword_weight": fusion.keyword_weight,
    }
    statement = text_search_sql(spec.name, spec.metric, chosen.form, mode, plan, spec.index.storage, spec.dimension)
    return SearchStatement(statement, params, plan, chosen.switch_key)


def text_search_hits(rows: list[Any], query: SearchQuery, mode: SearchMode) -> list[Hit]:
    """The hits of a hybrid or keyword search's rows (see _RESULT_COLUMNS)."""
    include = query.include
    hits = []
    for row in rows:
        doc = stored(row, row[6])
        if not include.content:
            doc.content = None
        if not include.metadata:
            doc.metadata_json = ""
        similarity, distance, keyword_rank, score = row[4], row[5], row[8], float(row[9])
        hits.append(
            Hit(
                doc,
                score,
                0.0 if distance is None else float(distance),
                vector_score=None if similarity is None else float(similarity),
                keyword_rank=None if keyword_rank is None else int(keyword_rank),
                fused_score=score if mode == "hybrid" else None,
            )
        )
    return hits


class TextSearchStore:
    """Runs hybrid and keyword searches, on the database ``reads`` routes them to (default: ``pool``)."""

    def __init__(self, pool: Pool, default_ef_search: int, reads: ReadRouting | None = None) -> None:
        self._reads = reads or ReadRouting(pool)
        self._default_ef_search = default_ef_search
        self._plans = PlanMemory()

    async def search(
        self, spec: CollectionSpec, query: SearchQuery, mode: SearchMode, *, tenant: str | None = None
    ) -> SearchResult:
        """The query's hits, best fused (or keyword) score first; on a multi-tenant collection, among
        ``tenant``'s documents. The vector ranking walks the index with an ef_search of at least its
        number of candidates (times the rerank factor of a compact index, up to pgvector's limit)."""
        ef_search = ef_search_of(spec, query, self._default_ef_search, query.fusion.candidates_for(query.top_k))
        statement = text_search_statement(spec, query, mode, ef_search, self._plans, tenant)
        settings = search_settings(ef_search, probes_of(spec, query))
        async with translated():
            rows = await read_all(self._reads, tenant, statement.sql, statement.params, binary=True, settings=settings)
        exhaustive = bool(rows[0][7]) if rows else bool(statement.params["exhaustive"])
        if statement.plan == "switch" and rows:
            assert statement.switch_key is not None
            self._plans.remember(statement.switch_key, "scan" if exhaustive else "walk")
        return SearchResult(text_search_hits(rows, query, mode), exhaustive)
