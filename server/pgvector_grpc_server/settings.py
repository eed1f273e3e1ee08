"""Configuration: environment variables (PGVECTOR_GRPC_*, DATABASE_URL), overridden by CLI flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs


def default_data_dir() -> Path:
    """Where the embedded PostgreSQL keeps its data unless told otherwise."""
    return Path(platformdirs.user_data_dir("pgvector-grpc")) / "pgdata"


@dataclass(frozen=True)
class Settings:
    """Everything the server can be told. Field names match the env vars PGVECTOR_GRPC_<NAME>."""

    listen: str = "127.0.0.1:50051"
    # Server processes sharing the port (SO_REUSEPORT) and the database; see workers.py.
    workers: int = 1
    # Set for the workers: several processes listen on the same port.
    reuse_port: bool = False
    # A worker dying sooner than this after its start ends the whole group (see workers.py).
    worker_crash_loop_seconds: float = 10.0
    # The URL the server's pool connects with: the app role's (pgvector_grpc_app, held to row-level security).
    database_url: str | None = field(default=None, repr=False)
    # A role that may apply sql/ (the schema owner, or one that may create roles); also the URL
    # of `keys`. Without it, sql/ is applied with DATABASE_URL.
    admin_database_url: str | None = field(default=None, repr=False)
    # Read replicas (streaming standbys of DATABASE_URL's server) for the reads, as the app role
    # (env: comma-separated). Writes, Migrate and checkpoints stay on the primary.
    read_database_urls: tuple[str, ...] = field(default=(), repr=False)
    # A replica lagging the primary by more seconds than this is skipped.
    max_replica_lag: float = 5.0
    # How often the replicas' lag and state are checked, in seconds.
    replica_check_interval: float = 0.5
    # Let the pool's role be a superuser, BYPASSRLS or the tables' owner (tenants then NOT isolated).
    allow_privileged_role: bool = False
    data_dir: Path = field(default_factory=default_data_dir)
    apply_schema: bool = True
    pool_min_size: int = 2
    pool_max_size: int = 10
    pool_max_waiting: int = 256
    pool_timeout: float = 10.0
    statement_timeout_ms: int = 60_000
    max_message_bytes: int = 64 * 2**20
    max_top_k: int = 1000
    max_batch_documents: int = 10_000
    read_ahead_batches: int = 2
    # Ingest batches of one stream written at once on their own connections (committed, acknowledged
    # and placed in insertion order as the stream sends them); at most pool_max_size.
    ingest_parallel_batches: int = 4
    default_ef_search: int = 100
    search_stream_concurrency: int = 4
    reflection: bool = True
    grace_seconds: float = 10.0
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    health_interval: float = 2.0
    # maintenance_work_mem of deferred index builds (BuildIndex, the end of Migrate).
    index_build_memory: str = "512MB"
    # Directories Migrate may read Chroma stores under (env: os.pathsep-separated). None = the
    # default: <data_dir>/imports with the embedded PostgreSQL, no directory with DATABASE_URL.
    migrate_roots: tuple[Path, ...] | None = None
    # HOST or HOST:PORT of Chroma servers Migrate may connect to (env: comma-separated); none = no URL.
    migrate_allow_hosts: tuple[str, ...] = ()
    # Largest Chroma directory Migrate copies, in bytes; 0 = limited by the free disk only.
    migrate_max_bytes: int = 0
    # Bytes that must stay free in the temp dir after every directory copy in flight.
    migrate_min_free_bytes: int = 512 * 2**20
    # Seconds a Chroma server may take to answer one request (connect, or each read) before Migrate fails.
    migrate_http_timeout: float = 60.0
    # Clients must present a certificate signed by this CA (mTLS); needs tls_cert_file / tls_key_file.
    tls_client_ca_file: Path | None = None
    # Authentication is required when forced, when JWTs are configured, or once any API key exists.
    require_auth: bool = False
    # Allow a non-loopback address without authentication.
    insecure: bool = False
    reflection_requires_auth: bool = True
    # How long a looked-up API key is trusted: a revoked key stops working within this time.
    api_key_cache_seconds: float = 2.0
    jwt_secret: str | None = field(default=None, repr=False)
    # A JWKS file path or http(s) URL with the public keys of RS256 / ES256 tokens.
    jwt_jwks: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    # Dotted claim paths, e.g. app_metadata.tenant.
    jwt_tenant_claim: str = "sub"
    jwt_role_claim: str = "role"
    # CLAIM_VALUE=ROLE pairs mapping the role claim to reader / writer / admin.
    jwt_roles: str = "authenticated=writer,service_role=admin"
    jwt_leeway_seconds: float = 30.0
    # HOST:PORT of the Prometheus endpoint (/metrics, no authentication); None = no endpoint.
    metrics_listen: str | None = None
    # OTLP/gRPC collector of traces (needs the [otel] extra); None = OTEL_EXPORTER_OTLP_ENDPOINT or no traces.
    otlp_endpoint: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from the environment; DATABASE_URL is read without prefix too."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"PGVECTOR_GRPC_{f.name.upper()}")
            if raw is None and f.name == "database_url":
                raw = env.get("DATABASE_URL")
            if raw is None and f.name == "otlp_endpoint":
                raw = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            if raw is not None and raw != "":
                try:
                    values[f.name] = _parse(f.type, raw)
                except ValueError:
                    raise InvalidSetting(f"PGVECTOR_GRPC_{f.name.upper()}={raw!r} is not a valid {f.type}") from None
        return cls(**values)

    def problems(self) -> list[str]:
        """What is wrong with these settings, found without touching the network or the data directory."""
        found = [f"--listen {self.listen!r}: {why}" for why in _address_problems(self.listen)]
        if self.metrics_listen is not None:
            try:
                split_address(self.metrics_listen)
            except ValueError as exc:
                found.append(f"--metrics-listen {self.metrics_listen!r}: {exc}")
        if self.pool_min_size < 0 or self.pool_max_size < 1 or self.pool_min_size > self.pool_max_size:
            found.append(f"pool sizes: need 0 <= min ({self.pool_min_size}) <= max ({self.pool_max_size}), max >= 1")
        for name in ("max_message_bytes", "max_top_k", "max_batch_documents", "statement_timeout_ms"):
            if getattr(self, name) <= 0:
                found.append(f"{name} must be positive (is {getattr(self, name)})")
        for name in ("max_replica_lag", "replica_check_interval"):
            if getattr(self, name) <= 0:
                found.append(f"{name} must be positive (is {getattr(self, name)})")
        for name in ("tls_cert_file", "tls_key_file", "tls_client_ca_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                found.append(f"{name.removesuffix('_file').replace('_', '-')} {path}: no such file")
        return found

    def imports_directory(self) -> Path:
        """The default migrate root of the embedded PostgreSQL, created on demand."""
        return self.data_dir.expanduser().resolve() / "imports"

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given (non-None) values replaced."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


class InvalidSetting(ValueError):
    """A setting that cannot be used as given (reported as one line, exit status 2)."""


def split_address(address: str) -> tuple[str, int]:
    """HOST and PORT of ``HOST:PORT`` or ``[IPv6]:PORT``; ValueError otherwise."""
    host, separator, port = address.rpartition(":")
    if not separator or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError("expected HOST:PORT")
    return host.removeprefix("[").removesuffix("]"), int(port)


def _address_problems(address: str) -> list[str]:
    if address.startswith(("unix:", "unix-abstract:")):
        return []
    try:
        split_address(address)
    except ValueError as exc:
        return [str(exc)]
    return []


def _parse(type_name: Any, raw: str) -> Any:
    kind = str(type_name)
    if kind.startswith("tuple[Path"):
        return tuple(Path(part) for part in raw.split(os.pathsep) if part)
    if kind.startswith("tuple[str"):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind.startswith("bool"):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if kind.startswith("int"):
        return int(raw)
    if kind.startswith("float"):
        return float(raw)
    if "Path" in kind:
        return Path(raw)
    return raw
