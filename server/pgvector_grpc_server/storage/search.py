"""Nearest-neighbour search: the plans of pgvector_grpc.search_documents, inlined.

The server does not call the PL/pgSQL function: it runs the same plans as one prepared statement,
which saves the function's catalogue lookup and its planning on every call. Its settings (ef_search,
the iterative scan, the tenant) go with it in one pipeline - set_config(..., true), the search,
Sync: one round trip, one implicit transaction, and nothing outlives it.

A filtered search picks its plan by selectivity in that one statement: it collects the matching rows
through the metadata index up to ``pgvector_grpc.exact_scan_limit`` (sql/030). When fewer match, the
nearest of them is the exact answer (``exhaustive``); otherwise it walks the vector index with the
iterative scan, and the candidates collected are discarded. The choice is remembered for a while
(PlanMemory), so a filter used again runs the chosen plan alone.

A compact index (halfvec or bit storage) is walked by its own expression for rerank_factor x top_k
candidates, whose exact distances (the table keeps the full vectors) pick and order the top_k.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pgvector_grpc_common.vocabulary import IvfflatIndex, Metric, NoIndex, VectorStorage
from psycopg import sql

from pgvector_grpc_server.domain.models import CollectionSpec, Hit, SearchQuery, SearchResult
from pgvector_grpc_server.storage.documents import stored
from pgvector_grpc_server.storage.errors import translated
from pgvector_grpc_server.storage.filter_jsonpath import CompiledFilter, compile_filter
from pgvector_grpc_server.storage.pool import Pool
from pgvector_grpc_server.storage.routing import ReadRouting, read_all

_OPERATORS: dict[Metric, str] = {"cosine": "<=>", "l2": "<->", "inner_product": "<#>"}
_SCORES: dict[Metric, str] = {"cosine": "1 - {}", "l2": "- {}", "inner_product": "- {}"}
# pgvector's largest hnsw.ef_search.
MAX_EF_SEARCH = 1000


def search_settings(ef_search: int, probes: int | None = None) -> dict[str, str]:
    """The settings a search runs with (kept on the pooled session: storage/sessions.py); ``probes``
    for a search of an IVFFlat index."""
    settings = {
        "hnsw.ef_search": str(ef_search),
        "hnsw.iterative_scan": "relaxed_order",
        "ivfflat.iterative_scan": "relaxed_order",
    }
    if probes is not None:
        settings["ivfflat.probes"] = str(probes)
    return settings


def probes_of(spec: CollectionSpec, query: SearchQuery) -> int | None:
    """The IVFFlat lists a query visits first: its own number, else the square root of the index's
    lists (pgvector's advice); None when the collection's index is not IVFFlat."""
    if not isinstance(spec.index, IvfflatIndex):
        return None
    return query.probes or max(1, round(math.sqrt(spec.index.lists)))


# What a search returns, over the nearest rows `n` (row_id, distance) joined to the table `d`.
_RESULT_COLUMNS = """d.id, d.content, d.metadata::text,
       CASE WHEN %(include_embedding)s THEN d.embedding END,
       {similarity}, n.distance,
       CASE WHEN %(include_embedding)s THEN d.embedding_exact END"""

# One plan: the vector index walk (ORDER BY the distance operator itself, so the index is used), or
# an exact scan (OFFSET 0 keeps its ORDER BY from reaching the index); the caller knows which, so
# exhaustive is a parameter.
_ONE_PLAN = """
SELECT {columns}, %(exhaustive)s
FROM ({nearest}) n JOIN {table} d ON d.ctid = n.row_id
WHERE %(min_similarity)s::float8 IS NULL OR {similarity} >= %(min_similarity)s::float8
ORDER BY n.distance, d.id"""
_WALK = """SELECT d.ctid AS row_id, d.id, (d.embedding {op} %(query)s)::float8 AS distance
    FROM {table} d WHERE d.embedding IS NOT NULL{condition}
    ORDER BY d.embedding {op} %(query)s LIMIT %(top_k)s"""
# The walk of a compact index: ORDER BY its expression (sql/020 vector_index_key), so that the index
# is used, for %(candidates)s rows; their exact distances order them and keep top_k.
_RERANKED_WALK = """SELECT * FROM (
        SELECT d.ctid AS row_id, d.id, (d.embedding {op} %(query)s)::float8 AS distance
        FROM {table} d WHERE d.embedding IS NOT NULL{condition}
        ORDER BY {index_key} {index_op} {query_key} LIMIT %(candidates)s) r
    ORDER BY r.distance, r.id LIMIT %(top_k)s"""
_SCAN = """SELECT * FROM (
        SELECT d.ctid AS row_id, d.id, (d.embedding {op} %(query)s)::float8 AS distance
        FROM {table} d WHERE d.embedding IS NOT NULL{condition} OFFSET 0) e
    ORDER BY e.distance, e.id LIMIT %(top_k)s"""

# The selectivity switch. Only the branch the count chose runs (a one-time filter on each); the
# left join keeps one row, all NULL but exhaustive, when nothing is returned. Its common table
# expressions end in `nearest` (row_id, id, distance) and `plan` (exhaustive): hybrid.py's vector
# ranking is built on them too.
SWITCH_CTES = """scan_limit AS MATERIALIZED (
    SELECT pgvector_grpc.exact_scan_limit(%(collection)s, %(ef)s) AS n),
candidates AS MATERIALIZED (
    SELECT d.ctid AS row_id, d.id, (d.embedding {op} %(query)s)::float8 AS distance
    FROM {table} d WHERE d.embedding IS NOT NULL AND {indexed_condition}
    LIMIT (SELECT n FROM scan_limit)),
plan AS MATERIALIZED (
    SELECT count(*) < (SELECT n FROM scan_limit) AS exhaustive FROM candidates),
nearest AS (
    SELECT * FROM (SELECT row_id, id, distance FROM candidates ORDER BY distance, id LIMIT %(top_k)s) e
    WHERE (SELECT exhaustive FROM plan)
    UNION ALL
    SELECT * FROM ({walk}) w
    WHERE NOT (SELECT exhaustive FROM plan))"""
_SWITCH = (
    "\nWITH "
    + SWITCH_CTES
    + """
SELECT {columns}, p.exhaustive
FROM plan p LEFT JOIN (nearest n JOIN {table} d ON d.ctid = n.row_id)
    ON %(min_similarity)s::float8 IS NULL OR {similarity} >= %(min_similarity)s::float8
ORDER BY n.distance, d.id"""
)


def _conditions(filter_form: str) -> tuple[str, str]:
    """(the filter as the metadata index serves it, the same filter as the index cannot serve it).
    The vector index walk gets the second form so that the planner never swaps it for a bitmap
    scan of many rows: the switch already knows many match."""
    if not filter_form:
        return "true", "true"
    if filter_form == "document":
        form = (
            "jsonb_path_match_tz(pgvector_grpc.document_object(d.id, d.content, d.metadata),"
            " %(filter)s::jsonpath, '{}', true)"
        )
        return form, form
    if filter_form == "timestamps":
        form = "jsonb_path_match_tz(d.metadata, %(filter)s::jsonpath, '{}', true)"
        return form, form
    return "d.metadata @@ %(filter)s::jsonpath", "jsonb_path_match(d.metadata, %(filter)s::jsonpath, '{}', true)"


def _index_key(storage: VectorStorage, dimension: int, operand: str) -> sql.Composable:
    """What the vector index holds for ``operand``: sql/020's vector_index_key, unqualified as the
    distance operators are."""
    if storage == "halfvec":
        return sql.SQL("({}::halfvec({}))").format(sql.SQL(operand), sql.Literal(dimension))
    if storage == "bit":
        return sql.SQL("(binary_quantize({})::bit({}))").format(sql.SQL(operand), sql.Literal(dimension))
    return sql.SQL(operand)


def _walk(
    metric: Metric, storage: VectorStorage, dimension: int, table: sql.Identifier, condition: str
) -> sql.Composed:
    """The vector index walk: on a compact index, for the candidates to re-rank."""
    op = sql.SQL(_OPERATORS[metric])
    if storage == "vector":
        return sql.SQL(_WALK).format(op=op, table=table, condition=sql.SQL(condition))
    return sql.SQL(_RERANKED_WALK).format(
        op=op,
        table=table,
        condition=sql.SQL(condition),
        index_key=_index_key(storage, dimension, "d.embedding"),
        index_op=sql.SQL("<~>" if storage == "bit" else _OPERATORS[metric]),
        query_key=_index_key(storage, dimension, "%(query)s::vector"),
    )


def nearest_rows(
    metric: Metric, storage: VectorStorage, dimension: int, table: sql.Identifier, filter_form: str, plan: str
) -> sql.Composed:
    """The nearest rows (row_id, id, distance) of a plan chosen up front: "walk" (the vector index,
    re-ranked on a compact one) or "scan" (exact, the filter as the metadata index serves it)."""
    indexed, walkable = _conditions(filter_form)
    condition = "" if not filter_form else " AND " + (indexed if plan == "scan" else walkable)
    if plan == "walk":
        return _walk(metric, storage, dimension, table, condition)
    return sql.SQL(_SCAN).format(op=sql.SQL(_OPERATORS[metric]), table=table, condition=sql.SQL(condition))


def switch_walk(
    metric: Metric, storage: VectorStorage, dimension: int, table: sql.Identifier, filter_form: str
) -> sql.Composed:
    """The index walk of the selectivity switch: the filter in the form the metadata index cannot
    serve, so the planner never swaps the walk for a bitmap scan of the many rows that match."""
    return _walk(metric, storage, dimension, table, " AND " + _conditions(filter_form)[1])


@lru_cache(maxsize=1024)
def search_sql(
    collection: str, metric: Metric, filter_form: str, plan: str, storage: VectorStorage = "vector", dimension: int = 0
) -> bytes:
    """The statement of a search on ``collection``. ``filter_form``: "", "metadata", "timestamps" or
    "document"; ``plan``: "walk" (vector index), "scan" (exact) or "switch" (chosen by selectivity);
    ``storage`` and ``dimension``: what the vector index holds. Composed once per collection and
    kind, and psycopg prepares each."""
    table = sql.Identifier("pgvector_grpc", collection)
    op = sql.SQL(_OPERATORS[metric])
    similarity = sql.SQL(_SCORES[metric].format("n.distance"))
    columns = sql.SQL(_RESULT_COLUMNS).format(similarity=similarity)
    if plan == "switch":
        walk = switch_walk(metric, storage, dimension, table, filter_form)
        statement = sql.SQL(_SWITCH).format(
            op=op,
            table=table,
            indexed_condition=sql.SQL(_conditions(filter_form)[0]),
            walk=walk,
            columns=columns,
            similarity=similarity,
        )
    else:
        nearest = nearest_rows(metric, storage, dimension, table, filter_form, plan)
        statement = sql.SQL(_ONE_PLAN).format(columns=columns, nearest=nearest, table=table, similarity=similarity)
    return statement.as_bytes(None)


def rerank_factor(spec: CollectionSpec, query: SearchQuery) -> int:
    """Candidates per result the vector index returns for re-ranking: 1 when its distances are exact."""
    if spec.index.storage == "vector":
        return 1
    return query.rerank_factor or spec.index.rerank_factor


def ef_search_of(spec: CollectionSpec, query: SearchQuery, default_ef_search: int, results: int | None = None) -> int:
    """The HNSW candidate list of a query that wants ``results`` rows of the index (default its
    top_k): at least every candidate it needs, re-ranking included, at most pgvector's limit."""
    wanted = max(query.ef_search or default_ef_search, (results or query.top_k) * rerank_factor(spec, query))
    return min(wanted, MAX_EF_SEARCH)


def _filter_form(compiled: CompiledFilter | None) -> str:
    if compiled is None:
        return ""
    if compiled.on_document:
        return "document"
    return "timestamps" if compiled.timestamps else "metadata"


class PlanMemory:
    """Which plan the selectivity switch chose for a filter lately, so that a filter used again
    skips the count: a category or tenant filter comes back query after query, and for a common
    filter the count costs more than the search itself (up to exact_scan_limit rows fetched).

    A remembered plan that has gone stale costs speed, never correctness: the exact scan is exact
    whatever the count, and the index walk is reported as not exhaustive. Entries are forgotten
    after ``ttl`` seconds so that a collection that grows or shrinks is counted again."""

    def __init__(self, ttl: float = 30.0, size: int = 4096) -> None:
        self._ttl = ttl
        self._size = size
        self._plans: OrderedDict[Hashable, tuple[str, float]] = OrderedDict()

    def recall(self, key: Hashable) -> str | None:
        """The plan remembered for ``key``, if still fresh."""
        found = self._plans.get(key)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    def remember(self, key: Hashable, plan: str) -> None:
        self._plans[key] = (plan, time.monotonic() + self._ttl)
        self._plans.move_to_end(key)
        while len(self._plans) > self._size:
            self._plans.popitem(last=False)


@dataclass(frozen=True)
class VectorPlan:
    """How a query's vector ranking runs: its filter compiled, the filter's form, the plan, and for
    the switch the key under which to remember the plan it chose."""

    compiled: CompiledFilter | None
    form: str
    plan: str
    switch_key: Hashable | None


def vector_plan(
    spec: CollectionSpec,
    query: SearchQuery,
    ef_search: int,
    plans: PlanMemory,
    tenant: str | None,
    *,
    exact: bool = False,
) -> VectorPlan:
    """The exact scan when asked (``exact`` or the query's own) or when there is no vector index; the
    index walk without a filter; else the plan remembered for the filter, or the selectivity switch."""
    compiled = None if query.filter is None else compile_filter(query.filter)
    form = _filter_form(compiled)
    if exact or query.exact or isinstance(spec.index, NoIndex):
        return VectorPlan(compiled, form, "scan", None)
    if compiled is None:
        return VectorPlan(compiled, form, "walk", None)
    switch_key = (spec.name, tenant, form, compiled.jsonpath, ef_search)
    return VectorPlan(compiled, form, plans.recall(switch_key) or "switch", switch_key)


@dataclass(frozen=True)
class SearchStatement:
    """A search ready to run: its statement and parameters, its plan, and for the switch the key
    under which to remember the plan it chose."""

    sql: bytes
    params: dict[str, Any]
    plan: str
    switch_key: Hashable | None


def search_statement(
    spec: CollectionSpec, query: SearchQuery, ef_search: int, plans: PlanMemory, tenant: str | None = None
) -> SearchStatement:
    """The statement for ``query`` on the collection ``spec`` as ``tenant``."""
    chosen = vector_plan(spec, query, ef_search, plans, tenant)
    compiled, plan = chosen.compiled, chosen.plan
    params: dict[str, Any] = {
        "collection": spec.name,
        "query": query.embedding,
        "top_k": query.top_k,
        "candidates": query.top_k * rerank_factor(spec, query),
        "ef": ef_search,
        "filter": None if compiled is None else compiled.jsonpath,
        "min_similarity": query.min_similarity,
        "include_embedding": query.include.embedding,
        "exhaustive": plan == "scan",
    }
    statement = search_sql(spec.name, spec.metric, chosen.form, plan, spec.index.storage, spec.dimension)
    return SearchStatement(statement, params, plan, chosen.switch_key)


class SearchStore:
    """Runs searches, on the database ``reads`` routes them to (default: ``pool``)."""

    def __init__(self, pool: Pool, default_ef_search: int, reads: ReadRouting | None = None) -> None:
        self._reads = reads or ReadRouting(pool)
        self._default_ef_search = default_ef_search
        self._plans = PlanMemory()

    async def search(self, spec: CollectionSpec, query: SearchQuery, *, tenant: str | None = None) -> SearchResult:
        """The query's hits, closest first; on a multi-tenant collection, among ``tenant``'s documents."""
        ef_search = ef_search_of(spec, query, self._default_ef_search)
        statement = search_statement(spec, query, ef_search, self._plans, tenant)
        # The settings and the deadline's time limit stay on the pooled session, the tenant goes with
        # the statement (fetch_all, via read_all): one round trip, no BEGIN / COMMIT.
        settings = search_settings(ef_search, probes_of(spec, query))
        async with translated():
            rows = await read_all(self._reads, tenant, statement.sql, statement.params, binary=True, settings=settings)
        exhaustive = bool(rows[0][7]) if rows else bool(statement.params["exhaustive"])
        if statement.plan == "switch":
            assert statement.switch_key is not None
            self._plans.remember(statement.switch_key, "scan" if exhaustive else "walk")
        include = query.include
        hits = []
        for row in rows:
            if row[0] is None:  # the switch's row when nothing was returned
                continue
            doc = stored(row, row[6])
            if not include.content:
                doc.content = None
            if not include.metadata:
                doc.metadata_json = ""
            score = float(row[4])
            hits.append(Hit(doc, score, float(row[5]), vector_score=score))
        return SearchResult(hits, exhaustive)
