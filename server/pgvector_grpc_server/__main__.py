"""Command line: `pgvector-grpc serve`, `keys`, `migrate` and `health`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pgvector-grpc", description="gRPC vector search on PostgreSQL + pgvector")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server (embedded PostgreSQL unless DATABASE_URL is set)")
    serve.add_argument("--listen", help="HOST:PORT to listen on (default 127.0.0.1:50051)")
    serve.add_argument("--data-dir", type=Path, help="embedded PostgreSQL data directory")
    serve.add_argument(
        "--workers",
        type=int,
        help="server processes sharing the port and the database (default 1); a worker that dies is restarted",
    )
    serve.add_argument(
        "--database-url", help="use this PostgreSQL instead of the embedded one, as the app role (pgvector_grpc_app)"
    )
    serve.add_argument(
        "--admin-database-url",
        help="a role that may apply sql/ (schema owner / CREATEROLE); default: DATABASE_URL itself",
    )
    serve.add_argument(
        "--allow-privileged-role",
        action="store_true",
        default=None,
        help="let the pool's role be a superuser, BYPASSRLS or the schema owner: tenants are then NOT isolated",
    )
    serve.add_argument("--no-apply-schema", action="store_true", help="do not apply sql/ at start")
    serve.add_argument("--no-reflection", action="store_true", help="disable server reflection")
    serve.add_argument("--pool-max-size", type=int, help="maximum database connections")
    serve.add_argument("--max-message-bytes", type=int, help="largest gRPC message accepted or sent")
    serve.add_argument("--max-top-k", type=int, help="largest top_k accepted")
    serve.add_argument("--max-batch-documents", type=int, help="largest Ingest batch accepted")
    serve.add_argument("--tls-cert", "--tls-cert-file", dest="tls_cert_file", type=Path, help="PEM certificate chain")
    serve.add_argument("--tls-key", "--tls-key-file", dest="tls_key_file", type=Path, help="PEM private key")
    serve.add_argument("--tls-client-ca", type=Path, help="require client certificates signed by this CA (mTLS)")
    _add_auth_arguments(serve)
    _add_migrate_arguments(serve)
    serve.add_argument("--log-level", default="INFO")

    keys = commands.add_parser("keys", help="create, list and revoke API keys (works while the server runs)")
    from pgvector_grpc_server.keys_cli import add_arguments as add_keys_arguments

    add_keys_arguments(keys)

    migrate = commands.add_parser(
        "migrate", help="copy ChromaDB collections into the server, with progress, resume and verification"
    )
    from pgvector_grpc.cli.migrate import add_arguments

    add_arguments(migrate)

    health = commands.add_parser("health", help="exit 0 when the server reports SERVING")
    from pgvector_grpc.cli.health import add_arguments as add_health_arguments

    add_health_arguments(health)
    return parser


def _add_auth_arguments(serve: argparse.ArgumentParser) -> None:
    auth = serve.add_argument_group("authentication (required once an API key exists or JWTs are configured)")
    auth.add_argument("--require-auth", action="store_true", default=None, help="require authentication even now")
    auth.add_argument(
        "--insecure", action="store_true", default=None, help="allow a non-loopback address without authentication"
    )
    auth.add_argument(
        "--open-reflection", action="store_true", help="serve reflection without authentication (health always is)"
    )
    auth.add_argument("--jwt-secret", help="HS256 secret of JWTs (prefer PGVECTOR_GRPC_JWT_SECRET: argv is visible)")
    auth.add_argument("--jwt-jwks", help="JWKS file or URL with the public keys of RS256 / ES256 JWTs")
    auth.add_argument("--jwt-audience", help="required aud claim")
    auth.add_argument("--jwt-issuer", help="required iss claim")
    auth.add_argument("--jwt-tenant-claim", help="claim naming the tenant (default sub; dotted paths allowed)")
    auth.add_argument("--jwt-role-claim", help="claim naming the role (default role)")
    auth.add_argument("--jwt-roles", help="CLAIM_VALUE=ROLE,... (default authenticated=writer,service_role=admin)")


def _add_migrate_arguments(serve: argparse.ArgumentParser) -> None:
    sources = serve.add_argument_group("what Migrate may read on the server's side")
    roots = sources.add_mutually_exclusive_group()
    roots.add_argument(
        "--migrate-root",
        action="append",
        type=Path,
        metavar="DIR",
        help="a directory Chroma stores may be under (repeatable; default: DATA_DIR/imports with the embedded "
        "PostgreSQL, none with a database URL)",
    )
    roots.add_argument("--no-migrate-roots", action="store_true", help="read no directory, not even the default")
    sources.add_argument(
        "--migrate-allow-host",
        action="append",
        metavar="HOST[:PORT]",
        help="a Chroma server Migrate may connect to (repeatable; default none; without a port: 8000 for http, "
        "443 for https)",
    )
    sources.add_argument("--migrate-max-bytes", type=int, help="largest Chroma directory copied (default no limit)")
    sources.add_argument(
        "--migrate-min-free-bytes", type=int, help="free space to keep in the temp dir after a copy (512 MiB)"
    )


def _migrate_roots(args: argparse.Namespace) -> tuple[Path, ...] | None:
    if args.no_migrate_roots:
        return ()
    return tuple(args.migrate_root) if args.migrate_root else None


def _serve(args: argparse.Namespace) -> int:
    from pgvector_grpc_server.access import UnsafeConfiguration
    from pgvector_grpc_server.app import run
    from pgvector_grpc_server.embedded import DataDirectoryInUse
    from pgvector_grpc_server.settings import Settings
    from pgvector_grpc_server.storage.schema import SchemaNotApplied

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env().with_overrides(
        listen=args.listen,
        workers=args.workers,
        data_dir=args.data_dir,
        database_url=args.database_url,
        admin_database_url=args.admin_database_url,
        allow_privileged_role=args.allow_privileged_role,
        apply_schema=False if args.no_apply_schema else None,
        reflection=False if args.no_reflection else None,
        pool_max_size=args.pool_max_size,
        max_message_bytes=args.max_message_bytes,
        max_top_k=args.max_top_k,
        max_batch_documents=args.max_batch_documents,
        tls_cert_file=args.tls_cert_file,
        tls_key_file=args.tls_key_file,
        tls_client_ca_file=args.tls_client_ca,
        require_auth=args.require_auth,
        insecure=args.insecure,
        reflection_requires_auth=False if args.open_reflection else None,
        jwt_secret=args.jwt_secret,
        jwt_jwks=args.jwt_jwks,
        jwt_audience=args.jwt_audience,
        jwt_issuer=args.jwt_issuer,
        jwt_tenant_claim=args.jwt_tenant_claim,
        jwt_role_claim=args.jwt_role_claim,
        jwt_roles=args.jwt_roles,
        migrate_roots=_migrate_roots(args),
        migrate_allow_hosts=tuple(args.migrate_allow_host) if args.migrate_allow_host else None,
        migrate_max_bytes=args.migrate_max_bytes,
        migrate_min_free_bytes=args.migrate_min_free_bytes,
    )
    try:
        if settings.workers > 1:
            from pgvector_grpc_server.workers import run_workers

            return asyncio.run(run_workers(settings, args.log_level))
        asyncio.run(run(settings))
    except (UnsafeConfiguration, SchemaNotApplied, DataDirectoryInUse) as exc:
        print(f"pgvector-grpc: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `pgvector-grpc` console script."""
    args = _parser().parse_args(argv)
    if args.command == "keys":
        from pgvector_grpc_server.keys_cli import run as run_keys

        return run_keys(args)
    if args.command == "migrate":
        from pgvector_grpc.cli.migrate import run

        return run(args)
    if args.command == "health":
        from pgvector_grpc.cli.health import run as check_health

        return check_health(args)
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
