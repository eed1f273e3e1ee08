"""Command line: `pgvector-grpc serve`, `keys`, `db` (the server's), and the client's verbs."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any, NoReturn

from pgvector_grpc_server.logging_setup import LOG_FORMATS, configure_logging, quiet_grpc_core, quiet_wheel_warnings

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class _OneLineErrors(argparse.ArgumentParser):
    """A bad flag is one line on stderr (not the usage block), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    from pgvector_grpc.cli.verbs import EXIT_STATUSES

    parser = _OneLineErrors(
        prog="pgvector-grpc",
        description="gRPC vector search on PostgreSQL + pgvector",
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('pgvector-grpc')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the server (embedded PostgreSQL unless DATABASE_URL is set)",
        epilog=_environment_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
        "--read-database-url",
        action="append",
        metavar="URL",
        help="a read replica (streaming standby of DATABASE_URL's server) as the app role, for Search, Get, Count, "
        "List and the collection reads (repeatable; env PGVECTOR_GRPC_READ_DATABASE_URLS, comma-separated)",
    )
    serve.add_argument(
        "--max-replica-lag",
        type=float,
        metavar="SECONDS",
        help="skip a replica lagging the primary by more than this (default 5; env PGVECTOR_GRPC_MAX_REPLICA_LAG)",
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
    _add_operations_arguments(serve)

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

    from pgvector_grpc.cli.verbs import mount

    mount(commands)

    db = commands.add_parser("db", help="the embedded PostgreSQL's connection string, or psql on it")
    from pgvector_grpc_server.db_cli import add_arguments as add_db_arguments

    add_db_arguments(db)
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


def _add_operations_arguments(serve: argparse.ArgumentParser) -> None:
    operations = serve.add_argument_group("logs, metrics and traces")
    operations.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=os.environ.get("PGVECTOR_GRPC_LOG_LEVEL", "INFO").upper(),
        help="INFO: the startup line, warnings and errors only (env PGVECTOR_GRPC_LOG_LEVEL)",
    )
    operations.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=os.environ.get("PGVECTOR_GRPC_LOG_FORMAT", "text"),
        help="text, or json: one object per line with ts, level, logger, msg (env PGVECTOR_GRPC_LOG_FORMAT)",
    )
    operations.add_argument(
        "--metrics-listen",
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics, without authentication: keep it on loopback "
        "or a private network (env PGVECTOR_GRPC_METRICS_LISTEN; default off)",
    )
    operations.add_argument(
        "--otlp-endpoint",
        metavar="URL",
        help="send OpenTelemetry traces to this OTLP/gRPC collector, e.g. http://127.0.0.1:4317; needs the [otel] "
        "extra (env OTEL_EXPORTER_OTLP_ENDPOINT or PGVECTOR_GRPC_OTLP_ENDPOINT)",
    )


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
    sources.add_argument(
        "--migrate-http-timeout",
        type=float,
        metavar="SECONDS",
        help="how long a Chroma server may take to answer one request (default 60)",
    )


def _migrate_roots(args: argparse.Namespace) -> tuple[Path, ...] | None:
    if args.no_migrate_roots:
        return ()
    return tuple(args.migrate_root) if args.migrate_root else None


def _serve(args: argparse.Namespace) -> int:
    configure_logging(args.log_level, args.log_format)
    from pgvector_grpc_server.access import UnsafeConfiguration
    from pgvector_grpc_server.app import AddressInUse, run
    from pgvector_grpc_server.embedded import DataDirectoryInUse
    from pgvector_grpc_server.observability.tracing import TracingUnavailable
    from pgvector_grpc_server.settings import InvalidSetting, Settings
    from pgvector_grpc_server.storage.schema import SchemaNotApplied

    try:
        settings = _settings(args, Settings.from_env())
        if settings.workers > 1:
            from pgvector_grpc_server.workers import run_workers

            return asyncio.run(run_workers(settings, args.log_level))
        asyncio.run(run(settings))
    except (
        InvalidSetting,
        AddressInUse,
        TracingUnavailable,
        UnsafeConfiguration,
        SchemaNotApplied,
        DataDirectoryInUse,
    ) as exc:
        print(f"pgvector-grpc: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers are in place: stopped, not crashed
        return 130
    return 0


class _NoFlags(argparse.Namespace):
    """Parsed arguments in which no flag was given (to learn which settings have a flag)."""

    def __getattr__(self, name: str) -> None:
        return None


def _environment_help() -> str:
    """The end of `serve --help`: where settings come from, and those that have no flag, with their
    defaults (read from Settings, so that a new setting is listed as soon as it exists)."""
    from dataclasses import fields

    from pgvector_grpc_server.settings import Settings

    flagged = set(_overrides(_NoFlags()))
    internal = {"reuse_port"}  # set by `serve --workers` for its workers
    lines = [
        "Every setting also comes from the environment as PGVECTOR_GRPC_<NAME> (a flag wins over its variable;",
        "DATABASE_URL is read unprefixed too). These have no flag (variable=default):",
    ]
    defaults = Settings()
    for setting in fields(Settings):
        if setting.name not in flagged and setting.name not in internal:
            lines.append(f"  PGVECTOR_GRPC_{setting.name.upper()}={getattr(defaults, setting.name)}")
    return "\n".join(lines)


def _settings(args: argparse.Namespace, settings: Any) -> Any:
    return settings.with_overrides(**_overrides(args))


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the flags give (None where a flag was not given)."""
    return dict(
        listen=args.listen,
        workers=args.workers,
        data_dir=args.data_dir,
        database_url=args.database_url,
        admin_database_url=args.admin_database_url,
        read_database_urls=tuple(args.read_database_url) if args.read_database_url else None,
        max_replica_lag=args.max_replica_lag,
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
        migrate_http_timeout=args.migrate_http_timeout,
        metrics_listen=args.metrics_listen,
        otlp_endpoint=args.otlp_endpoint,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `pgvector-grpc` console script."""
    quiet_grpc_core()
    quiet_wheel_warnings()
    args = _parser().parse_args(argv)
    if args.command == "keys":
        from pgvector_grpc_server.keys_cli import run as run_keys

        return run_keys(args)
    if args.command in ("migrate", "health"):
        from pgvector_grpc.cli.health import run as check_health
        from pgvector_grpc.cli.migrate import run as migrate
        from pgvector_grpc.cli.output import run_reporting_errors

        return run_reporting_errors(migrate if args.command == "migrate" else check_health, args)
    if args.command == "db":
        from pgvector_grpc_server.db_cli import run as run_db

        return run_db(args)
    if args.command != "serve":
        from pgvector_grpc.cli.verbs import run as run_verb

        return run_verb(args)
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
