"""`pgvector-grpc keys create | list | revoke`: API keys in the server's database.

Works while the server runs: the embedded PostgreSQL of ``--data-dir`` is attached to, not restarted.
With ``--json`` each prints one JSON document: the new key with its fields, the list of keys, or the
revoked key's id."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pgvector_grpc_common.tables import write_table

from pgvector_grpc_server.domain.api_keys import ApiKeyRecord, generate_api_key, looks_like_api_key, split_api_key
from pgvector_grpc_server.domain.principal import Role
from pgvector_grpc_server.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument("--data-dir", type=Path, help="embedded PostgreSQL data directory (as for serve)")
    database.add_argument("--database-url", help="the server's PostgreSQL instead of the embedded one")
    database.add_argument(
        "--admin-database-url", help="a role that may write keys (the schema owner); default: DATABASE_URL"
    )
    database.add_argument("--json", action="store_true", help="machine output: one JSON document")
    actions = parser.add_subparsers(dest="keys_command", required=True)

    create = actions.add_parser("create", parents=[database], help="create a key and print it (shown only now)")
    create.add_argument("--tenant", required=True)
    create.add_argument("--role", required=True, choices=[role.label for role in Role])
    create.add_argument("--name", default="", help="a label to recognise the key by")
    create.add_argument("--collections", help="comma-separated collections the key may use (default: all)")

    actions.add_parser("list", parents=[database], help="list keys (never their secrets)")

    revoke = actions.add_parser("revoke", parents=[database], help="revoke a key by its id")
    revoke.add_argument("key_id", help="the key id shown by `keys list` (or the key itself)")


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env().with_overrides(
        data_dir=args.data_dir, database_url=args.database_url, admin_database_url=args.admin_database_url
    )
    # Writing keys takes the schema owner's rights: the server's app role may only read them.
    if settings.admin_database_url or settings.database_url:
        return asyncio.run(_run(args, settings.admin_database_url or settings.database_url or ""))
    from pgvector_grpc_server.embedded import DataDirectoryInUse, EmbeddedPostgres, running_conninfo

    postgres = EmbeddedPostgres(settings.data_dir)
    try:
        conninfo = postgres.start()
    except DataDirectoryInUse:
        conninfo = running_conninfo(settings.data_dir)  # the running server's: used, never stopped
    try:
        return asyncio.run(_run(args, conninfo))
    finally:
        postgres.stop()  # only if started here


async def _run(args: argparse.Namespace, conninfo: str) -> int:
    # Here, not at the top: every command line builds this command's parser, and psycopg takes a while to load.
    from pgvector_grpc_server.storage.api_keys import insert_key, key_admin_connection, list_keys, revoke_key

    async with key_admin_connection(conninfo) as conn:
        if args.keys_command == "create":
            key = generate_api_key()
            collections = None if args.collections is None else _names(args.collections)
            await insert_key(
                conn, key, tenant=args.tenant, role=Role.named(args.role), name=args.name, collections=collections
            )
            if args.json:
                fields = {"tenant": args.tenant, "role": args.role, "collections": collections, "name": args.name}
                print(json.dumps({"key": key.token, "key_id": key.key_id, **fields}))
            else:
                print(key.token)
            print(f"created key {key.key_id}; it is shown only this once", file=sys.stderr)
            return 0
        if args.keys_command == "list":
            records = await list_keys(conn)
            if args.json:
                print(json.dumps([_record(record) for record in records]))
                return 0
            write_table(
                ["key_id", "tenant", "role", "collections", "created", "status", "name"],
                [_row(record) for record in records],
            )
            return 0
        key_id = args.key_id
        if looks_like_api_key(key_id):
            parts = split_api_key(key_id)
            key_id = parts[0] if parts else key_id
        if await revoke_key(conn, key_id):
            if args.json:
                print(json.dumps({"revoked": key_id}))
            print(f"revoked {key_id}", file=sys.stderr)
            return 0
        print(f"no active key {key_id}", file=sys.stderr)
        return 1


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _names(text: str) -> list[str]:
    return sorted({name.strip() for name in text.split(",") if name.strip()})


def _record(record: ApiKeyRecord) -> dict[str, Any]:
    """A key as a JSON object: ``collections`` null for every collection, ``revoked`` null while active."""
    return {
        "key_id": record.key_id,
        "tenant": record.tenant,
        "role": record.role.label,
        "collections": None if record.collections is None else sorted(record.collections),
        "created": _utc(record.created_at),
        "revoked": _utc(record.revoked_at) if record.revoked_at else None,
        "name": record.name,
    }


def _row(record: ApiKeyRecord) -> list[str]:
    collections = "*" if record.collections is None else ",".join(sorted(record.collections))
    status = f"revoked {_utc(record.revoked_at)}" if record.revoked_at else "active"
    return [record.key_id, record.tenant, record.role.label, collections, _utc(record.created_at), status, record.name]
