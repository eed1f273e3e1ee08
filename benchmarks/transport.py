"""Where a Search's time goes besides the SQL, and the transports the issue asked to weigh.

The same search statement (the server's own, from storage.search) is answered five ways, each query
on every side in turn: through psycopg directly; by our server, called through the raw stub and
through the Python client; and by two servers of a few lines each that do nothing but run that
statement - one on grpc.aio with an async psycopg pool (our server's design without its layers:
authentication, metrics, validation, conversion) and one on grpc's sync server with a thread pool
and a sync psycopg pool (the alternative design). Then each server answers closed-loop callers for
a few seconds, and its process's CPU time per answered call is read from /proc.

The minimal servers show the floor any Python gRPC server pays here on top of the SQL, so the
ratios say what our own layers cost and what the other design would save.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from functools import partial
from typing import Any

import grpc
import numpy as np
import psycopg
from pgvector.psycopg import register_vector, register_vector_async
from pgvector_grpc import Client, Document
from pgvector_grpc.v1 import document_pb2, document_service_pb2, document_service_pb2_grpc
from pgvector_grpc_server.domain.models import CollectionSpec, SearchQuery
from pgvector_grpc_server.storage.pool import set_config_statement
from pgvector_grpc_server.storage.search import PlanMemory, search_settings, search_statement
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from benchmarks.harness import SERVER_PIDS, clustered, free_port, percentiles
from benchmarks.search import in_turn, timed

NAME = "transport"
EF_SEARCH = 100  # the server's default
POOL_SIZE = 10  # the server's default pool_max_size
SERVICE = "pgvector_grpc.v1.DocumentService"


def _statement(dim: int, embedding: np.ndarray) -> tuple[bytes, dict[str, Any]]:
    statement = search_statement(
        CollectionSpec(NAME, dim), SearchQuery(NAME, embedding, 10, None), EF_SEARCH, PlanMemory()
    )
    return statement.sql, statement.params


# Set once per connection, as the server's pooled sessions keep them (storage/sessions.py).
_SETTINGS = set_config_statement((), list(search_settings(EF_SEARCH).items()))


def _response(rows: list[Any]) -> document_service_pb2.SearchResponse:
    response = document_service_pb2.SearchResponse()
    for row in rows:
        hit = response.hits.add()
        hit.document.id = row[0]
        hit.document.content = row[1]
        hit.document.metadata_json = row[2]
        hit.score = float(row[4])
        hit.distance = float(row[5])
    return response


def _embedding(request: document_service_pb2.SearchRequest) -> np.ndarray:
    return np.frombuffer(request.embedding.packed, dtype="<f4")


def _handlers(
    search: Callable[..., Any],
) -> grpc.GenericRpcHandler[document_service_pb2.SearchRequest, document_service_pb2.SearchResponse]:
    method = grpc.unary_unary_rpc_method_handler(
        search,
        request_deserializer=document_service_pb2.SearchRequest.FromString,
        response_serializer=document_service_pb2.SearchResponse.SerializeToString,
    )
    return grpc.method_handlers_generic_handler(SERVICE, {"Search": method})


def serve_sync(conninfo: str, address: str, dim: int) -> None:
    """grpc's sync server, a thread per call from a pool, on a sync psycopg pool."""

    def configure(conn: psycopg.Connection[Any]) -> None:
        register_vector(conn)
        conn.execute(*_SETTINGS)

    pool = ConnectionPool(
        conninfo, min_size=POOL_SIZE, max_size=POOL_SIZE, kwargs={"autocommit": True}, configure=configure
    )
    pool.open(wait=True)

    def search(request: document_service_pb2.SearchRequest, _context: Any) -> document_service_pb2.SearchResponse:
        statement, params = _statement(dim, _embedding(request))
        with pool.connection() as conn:
            return _response(conn.execute(statement, params, binary=True).fetchall())

    server = grpc.server(futures.ThreadPoolExecutor(POOL_SIZE))
    server.add_generic_rpc_handlers((_handlers(search),))
    server.add_insecure_port(address)
    server.start()
    server.wait_for_termination()


def serve_aio(conninfo: str, address: str, dim: int) -> None:
    """grpc.aio on an async psycopg pool: our server's design, without its layers."""

    async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
        await register_vector_async(conn)
        await conn.execute(*_SETTINGS)

    async def main() -> None:
        pool = AsyncConnectionPool(
            conninfo,
            min_size=POOL_SIZE,
            max_size=POOL_SIZE,
            kwargs={"autocommit": True},
            configure=configure,
            open=False,
        )
        await pool.open(wait=True)

        async def search(
            request: document_service_pb2.SearchRequest, _context: Any
        ) -> document_service_pb2.SearchResponse:
            statement, params = _statement(dim, _embedding(request))
            async with pool.connection() as conn:
                cursor = await conn.execute(statement, params, binary=True)
                return _response(await cursor.fetchall())

        server = grpc.aio.server()
        server.add_generic_rpc_handlers((_handlers(search),))
        server.add_insecure_port(address)
        await server.start()
        await server.wait_for_termination()

    asyncio.run(main())


@contextmanager
def _minimal_server(target: Callable[[str, str, int], None], conninfo: str, dim: int) -> Iterator[tuple[str, int]]:
    """(address, pid) of a minimal server in a process of its own, ready to answer."""
    address = f"127.0.0.1:{free_port()}"
    process = multiprocessing.get_context("spawn").Process(target=target, args=(conninfo, address, dim), daemon=True)
    process.start()
    try:
        with grpc.insecure_channel(address) as channel:
            grpc.channel_ready_future(channel).result(timeout=60)
        assert process.pid is not None
        yield address, process.pid
    finally:
        process.terminate()
        process.join(30)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _closed_loop(address: str, pid: int, requests: list[Any], callers: int, seconds: float) -> tuple[float, float]:
    """(calls/s, server CPU ms per call) with ``callers`` threads calling back to back."""
    with grpc.insecure_channel(address) as channel:
        stub = document_service_pb2_grpc.DocumentServiceStub(channel)
        deadline = time.monotonic() + seconds

        def caller(offset: int) -> int:
            done = 0
            while time.monotonic() < deadline:
                stub.Search(requests[(offset + done) % len(requests)], timeout=30)
                done += 1
            return done

        cpu, started = _cpu_seconds(pid), time.perf_counter()
        with futures.ThreadPoolExecutor(callers) as pool:
            calls = sum(pool.map(caller, [i * 7 for i in range(callers)]))
        elapsed, used = time.perf_counter() - started, _cpu_seconds(pid) - cpu
    return calls / elapsed, used * 1000 / calls


def run(
    conninfo: str, address: str, n: int, dim: int, queries_n: int, callers: int, seconds: float
) -> list[dict[str, object]]:
    mixture = clustered(n + queries_n, dim, seed=3)
    vectors, queries = mixture[:n], mixture[n:]
    with Client(address, timeout=600) as client, psycopg.connect(conninfo, autocommit=True) as conn:
        register_vector(conn)
        conn.execute(*_SETTINGS)
        client.create_collection(NAME, dim)
        client.ingest(NAME, (Document(f"{i}", "x" * 200, {"i": i}, v) for i, v in enumerate(vectors)), batch_size=1000)
        conn.execute(f"VACUUM ANALYZE pgvector_grpc.{NAME}")

        def raw(embedding: np.ndarray) -> list[Any]:
            statement, params = _statement(dim, embedding)
            return conn.execute(statement, params, binary=True).fetchall()

        requests = [
            document_service_pb2.SearchRequest(
                collection=NAME,
                embedding=document_pb2.Vector(packed=q.astype("<f4").tobytes()),
                top_k=10,
                include=document_pb2.Include(content=True, metadata=True),  # as the client asks
            )
            for q in queries
        ]
        with (
            _minimal_server(serve_aio, conninfo, dim) as (aio_address, aio_pid),
            _minimal_server(serve_sync, conninfo, dim) as (sync_address, sync_pid),
            grpc.insecure_channel(address) as ours_channel,
            grpc.insecure_channel(aio_address) as aio_channel,
            grpc.insecure_channel(sync_address) as sync_channel,
        ):
            stubs = [
                document_service_pb2_grpc.DocumentServiceStub(c) for c in (ours_channel, aio_channel, sync_channel)
            ]
            sides = ("sql", "client", "ours", "aio", "sync")
            samples: dict[str, list[float]] = {side: [] for side in sides}
            for warm_up in (True, False):
                for qi, (q, request) in enumerate(zip(queries, requests, strict=True)):
                    sink: dict[str, list[float]] = {side: [] for side in sides} if warm_up else samples
                    in_turn(
                        qi,
                        partial(timed, sink["sql"], raw, q),
                        partial(timed, sink["client"], client.search, NAME, q, top_k=10),
                        *(
                            partial(timed, sink[side], stub.Search, request)
                            for side, stub in zip(sides[2:], stubs, strict=True)
                        ),
                    )
                    if warm_up and qi == 100:
                        break
            p50 = {side: percentiles(samples[side])[0] for side in sides}
            load = {
                side: _closed_loop(side_address, pid, requests, callers, seconds)
                for side, side_address, pid in (
                    ("ours", address, SERVER_PIDS[address]),
                    ("aio", aio_address, aio_pid),
                    ("sync", sync_address, sync_pid),
                )
            }
        client.delete_collection(NAME)
    sql_ms = f"{p50['sql']:.2f} ms (same SQL, psycopg)"
    return [
        {
            "what": "Search p50 via the client vs same SQL",
            "ours": f"{p50['client']:.2f} ms",
            "reference": sql_ms,
            "ratio": p50["client"] / p50["sql"],
            "overhead_ms": p50["client"] - p50["sql"],
            "goal_at_most": 1.3,  # issue 10
        },
        {
            "what": "floor: minimal grpc.aio server, same SQL",
            "ours": f"{p50['aio']:.2f} ms",
            "reference": sql_ms,
            "ratio": p50["aio"] / p50["sql"],
            "overhead_ms": p50["aio"] - p50["sql"],
        },
        {
            "what": "our server (raw stub) vs minimal grpc.aio server",
            "ours": f"{p50['ours']:.2f} ms",
            "reference": f"{p50['aio']:.2f} ms (grpc.aio, no layers)",
            "ratio": p50["ours"] / p50["aio"],
            "overhead_ms": p50["ours"] - p50["aio"],
        },
        {
            "what": "alternative: sync gRPC server + threads vs grpc.aio",
            "ours": f"{p50['sync']:.2f} ms",
            "reference": f"{p50['aio']:.2f} ms (grpc.aio, no layers)",
            "ratio": p50["sync"] / p50["aio"],
        },
        {
            "what": "our client vs raw stub, same server",
            "ours": f"{p50['client']:.2f} ms",
            "reference": f"{p50['ours']:.2f} ms (raw stub)",
            "ratio": p50["client"] / p50["ours"],
        },
        *(
            {
                "what": f"server CPU per Search, {callers} callers: {side}",
                "ours": f"{load[side][1]:.2f} ms, {load[side][0]:,.0f} q/s",
                "reference": f"{load['aio'][1]:.2f} ms, {load['aio'][0]:,.0f} q/s (grpc.aio, no layers)",
                "ratio": load[side][1] / load["aio"][1],
            }
            for side in ("ours", "sync")
        ),
    ]
