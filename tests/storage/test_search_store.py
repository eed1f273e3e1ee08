"""SearchStore on a real pool: each search runs with its own settings; the tenant never stays on the pooled session."""

from __future__ import annotations

import time

import numpy as np
import psycopg
import pytest
from pgvector_grpc_server.domain.models import CollectionSpec, Condition, SearchQuery
from pgvector_grpc_server.storage.pool import open_pool
from pgvector_grpc_server.storage.schema import apply_schema
from pgvector_grpc_server.storage.search import PlanMemory, SearchStore

SETTINGS = (
    "SELECT current_setting('pgvector_grpc.tenant', true), current_setting('hnsw.ef_search', true),"
    " current_setting('hnsw.iterative_scan', true)"
)


async def test_each_search_runs_with_its_settings_and_no_tenant_stays(database: str) -> None:
    await apply_schema(database)
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute("SELECT pgvector_grpc.create_collection('mt', 2, multi_tenant => true)")
        for tenant, x in (("alpha", 1), ("beta", -1)):
            with admin.transaction():
                admin.execute("SELECT set_config('pgvector_grpc.tenant', %s, true)", (tenant,))
                admin.execute(
                    "INSERT INTO pgvector_grpc.mt (id, metadata, embedding)"
                    " SELECT 'd' || i, jsonb_build_object('i', i), format('[%%s,%%s]', %s::int, i)::vector"
                    " FROM generate_series(1, 300) i",
                    (x,),
                )
    pool = await open_pool(database, min_size=1, max_size=1, max_waiting=0, timeout=10, statement_timeout_ms=10_000)
    try:
        store = SearchStore(pool, default_ef_search=100)
        spec = CollectionSpec("mt", 2, multi_tenant=True)
        query = np.array([1, 0], dtype=np.float32)
        few, many = Condition(("i",), "lt", 5), Condition(("i",), "gte", 5)
        for ef_search, (where, exhaustive) in zip((7, 7, 31), ((None, False), (few, True), (many, False)), strict=True):
            result = await store.search(spec, SearchQuery("mt", query, 3, where, ef_search=ef_search), tenant="alpha")
            assert result.exhaustive == exhaustive and len(result.hits) == 3
            assert all(h.distance < 1 for h in result.hits)  # alpha's rows: beta's point away from the query
            async with pool.connection() as conn:  # the pool's one connection, the search's
                # The search's own ef_search and scan are on the session (a search sets them when the
                # session lacks them), and no tenant: set_config leaves '' behind once a transaction ends.
                assert await (await conn.execute(SETTINGS)).fetchone() == ("", str(ef_search), "relaxed_order")
    finally:
        await pool.close()


def test_plan_memory_forgets_after_its_ttl_and_beyond_its_size(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    memory = PlanMemory(ttl=30.0, size=2)
    memory.remember("a", "scan")
    memory.remember("b", "walk")
    assert (memory.recall("a"), memory.recall("b"), memory.recall("c")) == ("scan", "walk", None)
    memory.remember("c", "walk")  # over size: the oldest goes
    assert (memory.recall("a"), memory.recall("c")) == (None, "walk")
    now[0] += 31
    assert memory.recall("b") is None and memory.recall("c") is None
