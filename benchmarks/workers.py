"""Queries/s of Search at 1, 4, 16 and 64 concurrent clients: the server with 1 and with N worker
processes (`serve --workers N`), next to the same SQL through psycopg pools of the same total size.

Load comes from up to 4 client processes (one Python process cannot drive 64 callers); every
caller has its own connection, so SO_REUSEPORT spreads them over the workers."""

from __future__ import annotations

import asyncio
import multiprocessing
import time

import grpc
import numpy as np
from pgvector_grpc import Client, Document
from pgvector_grpc.v1 import document_pb2, document_service_pb2, document_service_pb2_grpc
from psycopg_pool import AsyncConnectionPool

from benchmarks.harness import clustered, serving

COLLECTION = "qps"
SQL = (
    "SELECT id, content, metadata::text, similarity FROM pgvector_grpc.search_documents"
    "(%s, %s::vector, 10, NULL::jsonpath, NULL, 40)"
)
POOL_PER_SERVER = 10  # the server's default pool_max_size


def _load(address: str, vectors: np.ndarray) -> None:
    with Client(address, timeout=3600) as client:
        client.create_collection(COLLECTION, vectors.shape[1])
        docs = (Document(f"q-{i:07d}", "x" * 100, {"cat": f"c{i % 10}"}, v) for i, v in enumerate(vectors))
        client.ingest(COLLECTION, docs, batch_size=1000)


async def _grpc_callers(address: str, callers: int, seconds: float, queries: np.ndarray) -> int:
    channels = [grpc.aio.insecure_channel(address, [("grpc.use_local_subchannel_pool", 1)]) for _ in range(callers)]
    requests = [
        document_service_pb2.SearchRequest(
            collection=COLLECTION,
            embedding=document_pb2.Vector(packed=q.astype("<f4").tobytes()),
            top_k=10,
            ef_search=40,
        )
        for q in queries
    ]
    deadline = time.monotonic() + seconds

    async def caller(channel: grpc.aio.Channel, offset: int) -> int:
        stub = document_service_pb2_grpc.DocumentServiceStub(channel)
        done = 0
        while time.monotonic() < deadline:
            await stub.Search(requests[(offset + done) % len(requests)], timeout=30)
            done += 1
        return done

    try:
        return sum(await asyncio.gather(*(caller(c, i * 7) for i, c in enumerate(channels))))
    finally:
        for c in channels:
            await c.close(None)


async def _raw_callers(conninfo: str, callers: int, pool_size: int, seconds: float, queries: np.ndarray) -> int:
    from pgvector.psycopg import register_vector_async

    async with AsyncConnectionPool(
        conninfo, min_size=pool_size, max_size=pool_size, configure=register_vector_async, open=False
    ) as pool:
        await pool.wait()
        deadline = time.monotonic() + seconds

        async def caller(offset: int) -> int:
            done = 0
            while time.monotonic() < deadline:
                async with pool.connection() as conn:
                    cur = await conn.execute(SQL, (COLLECTION, queries[(offset + done) % len(queries)]), binary=True)
                    await cur.fetchall()
                done += 1
            return done

        return sum(await asyncio.gather(*(caller(i * 7) for i in range(callers))))


def _client_process(target: tuple[str, str], callers: int, pool_size: int, seconds: float, queries: np.ndarray) -> int:
    kind, where = target
    if kind == "grpc":
        return asyncio.run(_grpc_callers(where, callers, seconds, queries))
    return asyncio.run(_raw_callers(where, callers, pool_size, seconds, queries))


def _queries_per_second(
    target: tuple[str, str], concurrency: int, pool_size: int, seconds: float, queries: np.ndarray
) -> float:
    processes = min(concurrency, 4)
    shares = [concurrency // processes + (1 if i < concurrency % processes else 0) for i in range(processes)]
    pools = [max(1, pool_size // processes) for _ in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as workers:
        counts = workers.starmap(
            _client_process,
            [(target, share, pool, seconds, queries) for share, pool in zip(shares, pools, strict=True)],
        )
    return sum(counts) / seconds


def run(
    conninfo: str, address: str, n: int, dim: int, workers: int, levels: tuple[int, ...], seconds: float
) -> list[dict[str, object]]:
    vectors = clustered(n, dim, seed=5)
    queries = clustered(200, dim, seed=6)
    _load(address, vectors)
    results: list[dict[str, object]] = []
    with serving(conninfo) as one, serving(conninfo, "--workers", str(workers)) as several:
        for level in levels:  # each level measures all four in turn, so they see the same machine state
            for count, served in ((1, one), (workers, several)):
                pool = min(POOL_PER_SERVER * count, level)
                ours = _queries_per_second(("grpc", served), level, pool, seconds, queries)
                raw = _queries_per_second(("raw", conninfo), level, pool, seconds, queries)
                results.append(
                    {
                        "what": f"Search q/s, {level} clients, {count} worker{'s' if count > 1 else ''}",
                        "ours": f"{ours:,.0f} q/s",
                        "reference": f"{raw:,.0f} q/s (psycopg, pool {pool})",
                        "ratio": ours / raw,
                        **({"goal_at_least": 0.8} if level == max(levels) else {}),  # issue 10, at saturation
                    }
                )
    with Client(address) as client:
        client.delete_collection(COLLECTION)
    return results
