"""What authentication costs per unary call: the authenticating wrapper alone (an API key from its
cache, an HS256 JWT), and GetCollection end to end over a real channel with and without an API key."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, cast

import grpc
import jwt
import psycopg
from pgvector_grpc.v1 import collection_service_pb2, collection_service_pb2_grpc
from pgvector_grpc_server.app import Database, start
from pgvector_grpc_server.domain.api_keys import generate_api_key
from pgvector_grpc_server.domain.principal import Role
from pgvector_grpc_server.services.authentication import Authenticator, JwtSettings, parse_role_map
from pgvector_grpc_server.settings import Settings
from pgvector_grpc_server.storage.api_keys import ApiKeyStore, insert_key, key_admin_connection
from pgvector_grpc_server.storage.pool import open_pool
from pgvector_grpc_server.storage.schema import apply_schema
from pgvector_grpc_server.transport.auth import Access
from psycopg.conninfo import make_conninfo

from benchmarks.harness import free_port, percentiles

SECRET = "benchmark-secret-of-at-least-thirty-two-characters"
METHOD = "/pgvector_grpc.v1.CollectionService/GetCollection"


@dataclass(frozen=True)
class _Context:
    """What the wrapper asks of a call's context: its metadata."""

    metadata: tuple[tuple[str, str | bytes], ...]

    def invocation_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self.metadata


def _fresh_database(conninfo: str, name: str) -> str:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_conninfo(conninfo, dbname=name)


async def _new_key(conninfo: str) -> str:
    key = generate_api_key()
    async with key_admin_connection(conninfo) as conn:
        await insert_key(conn, key, tenant="bench", role=Role.ADMIN, name="bench", collections=None)
    return key.token


async def _interceptor_cost(conninfo: str, calls: int) -> list[dict[str, Any]]:
    await apply_schema(conninfo)
    token = await _new_key(conninfo)
    pool = await open_pool(conninfo, min_size=1, max_size=2, max_waiting=10, timeout=10, statement_timeout_ms=10_000)
    jwt_settings = JwtSettings(secret=SECRET, audience="authenticated", roles=parse_role_map("authenticated=reader"))
    authenticator = Authenticator(ApiKeyStore(pool), jwt_settings, always_required=True, key_cache_seconds=3600)
    request = collection_service_pb2.GetCollectionRequest(name="documents")

    async def servicer(request: Any, context: Any) -> Any:
        return request

    handler = grpc.unary_unary_rpc_method_handler(servicer)
    wrapped = Access(authenticator).authenticated(METHOD, handler)  # once, as at registration

    async def per_call_ms(credential: str | None) -> float:
        context = _Context((("authorization", f"Bearer {credential}"),) if credential else ())
        chosen = handler if credential is None else wrapped
        assert chosen.unary_unary is not None
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(calls):
                await chosen.unary_unary(request, cast(Any, context))
            best = min(best, (time.perf_counter() - started) * 1000 / calls)
        return best

    try:
        bare = await per_call_ms(None)
        claims = {"sub": "u", "role": "authenticated", "aud": "authenticated", "exp": int(time.time()) + 3600}
        user_token = jwt.encode(claims, SECRET)
        with_key = await per_call_ms(token)
        with_jwt = await per_call_ms(user_token)
    finally:
        await pool.close()
    return [
        {
            "what": f"authentication per unary call, {name}",
            "ours": f"{cost - bare:.4f} ms",
            "reference": "goal ≤ 0.05 ms",
            "ratio": (cost - bare) / 0.05,
            "goal_at_most": 1.0,  # issue 8: the cost over the goal's 0.05 ms
            "overhead_ms": cost - bare,
        }
        for name, cost in (("API key (cached)", with_key), ("HS256 JWT", with_jwt))
    ]


async def _end_to_end(open_conninfo: str, keyed_conninfo: str, calls: int) -> dict[str, Any]:
    token = await _new_key(keyed_conninfo)
    settings = Settings(listen=f"127.0.0.1:{free_port()}")
    servers = [
        await start(settings, Database(pool=None, admin=open_conninfo)),
        await start(Settings(listen=f"127.0.0.1:{free_port()}"), Database(pool=None, admin=keyed_conninfo)),
    ]
    try:
        samples: list[list[float]] = [[], []]
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{servers[0].port}") as open_channel,
            grpc.aio.insecure_channel(f"127.0.0.1:{servers[1].port}") as keyed_channel,
        ):
            stubs = [
                collection_service_pb2_grpc.CollectionServiceStub(open_channel),
                collection_service_pb2_grpc.CollectionServiceStub(keyed_channel),
            ]
            metadata: list[tuple[tuple[str, str], ...]] = [(), (("authorization", f"Bearer {token}"),)]
            request = collection_service_pb2.GetCollectionRequest(name="documents")
            # Interleaved rounds, so that drift in machine load hits both sides alike.
            for round_number in range(11):
                for side in (0, 1):
                    for _ in range(calls // 10):
                        started = time.perf_counter()
                        await stubs[side].GetCollection(request, metadata=metadata[side], timeout=10)
                        if round_number:  # the first round warms up
                            samples[side].append((time.perf_counter() - started) * 1000)
        p50s = [percentiles(side_samples)[0] for side_samples in samples]
    finally:
        for server in servers:
            await server.stop(0)
    return {
        "what": "GetCollection p50 with an API key, end to end",
        "ours": f"{p50s[1]:.3f} ms",
        "reference": f"{p50s[0]:.3f} ms (no authentication)",
        "ratio": p50s[1] / p50s[0],
        "overhead_ms": p50s[1] - p50s[0],
    }


def run(conninfo: str, calls: int = 20_000) -> list[dict[str, Any]]:
    micro = asyncio.run(_interceptor_cost(_fresh_database(conninfo, "bench_auth_micro"), calls))
    open_db, keyed_db = _fresh_database(conninfo, "bench_auth_open"), _fresh_database(conninfo, "bench_auth_keyed")
    return [*micro, asyncio.run(_end_to_end(open_db, keyed_db, min(calls, 2000)))]
