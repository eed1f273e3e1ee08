"""API keys written straight into a test database, as `pgvector-grpc keys create` does."""

from __future__ import annotations

import asyncio

from pgvector_grpc_server.domain.api_keys import generate_api_key
from pgvector_grpc_server.domain.principal import Role
from pgvector_grpc_server.storage.api_keys import insert_key, key_admin_connection, revoke_key


def create_key(conninfo: str, role: str, *, tenant: str = "acme", collections: list[str] | None = None) -> str:
    async def create() -> str:
        key = generate_api_key()
        async with key_admin_connection(conninfo) as conn:
            await insert_key(conn, key, tenant=tenant, role=Role.named(role), name="test", collections=collections)
        return key.token

    return asyncio.run(create())


def revoke(conninfo: str, key_id: str) -> bool:
    async def run() -> bool:
        async with key_admin_connection(conninfo) as conn:
            return await revoke_key(conn, key_id)

    return asyncio.run(run())


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]
