"""Who may reach the server: TLS credentials, the authenticator, and the secure-by-default rule
(a non-loopback address needs authentication unless the operator says --insecure)."""

from __future__ import annotations

import ipaddress

import grpc

from pgvector_grpc_server.services.authentication import Authenticator, JwtSettings, parse_role_map
from pgvector_grpc_server.settings import Settings
from pgvector_grpc_server.storage.api_keys import ApiKeyStore
from pgvector_grpc_server.storage.pool import Pool
from pgvector_grpc_server.transport.auth import Access


class UnsafeConfiguration(Exception):
    """The server would be reachable by anyone, tenants would not be isolated (the pool's database
    role bypasses row-level security), or its TLS settings are incomplete."""


def is_loopback(listen: str) -> bool:
    """Whether ``HOST:PORT`` (or a unix: address) is reachable from this machine only."""
    if listen.startswith(("unix:", "unix-abstract:")):
        return True
    host = listen.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def jwt_settings(settings: Settings) -> JwtSettings:
    return JwtSettings(
        secret=settings.jwt_secret,
        jwks=settings.jwt_jwks,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        tenant_claim=settings.jwt_tenant_claim,
        role_claim=settings.jwt_role_claim,
        roles=parse_role_map(settings.jwt_roles),
        leeway_seconds=settings.jwt_leeway_seconds,
    )


async def access_control(settings: Settings, pool: Pool) -> Access:
    """Who may call what, under these settings; UnsafeConfiguration when the address would be open to anyone."""
    exposed = not is_loopback(settings.listen)
    authenticator = Authenticator(
        ApiKeyStore(pool),
        jwt_settings(settings),
        always_required=settings.require_auth or (exposed and not settings.insecure),
        key_cache_seconds=settings.api_key_cache_seconds,
    )
    can_authenticate = settings.require_auth or settings.jwt_secret or settings.jwt_jwks
    if exposed and not settings.insecure and not can_authenticate and not await ApiKeyStore(pool).any_exist():
        raise UnsafeConfiguration(
            f"refusing to listen on {settings.listen} without authentication: create an API key "
            "(pgvector-grpc keys create), configure JWTs, pass --require-auth, or pass --insecure to "
            "serve unauthenticated"
        )
    return Access(authenticator, reflection_requires_auth=settings.reflection_requires_auth)


async def describe_authentication(settings: Settings, pool: Pool) -> str:
    """How callers are authenticated, for the startup log line: none, api-keys, or jwt+api-keys."""
    jwt = bool(settings.jwt_secret or settings.jwt_jwks)
    required = settings.require_auth or jwt or (not is_loopback(settings.listen) and not settings.insecure)
    if required or await ApiKeyStore(pool).any_exist():
        return "jwt+api-keys" if jwt else "api-keys"
    if not is_loopback(settings.listen):
        return "none (--insecure)"
    return "none (loopback only; required once an API key exists)"


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials (with required client certificates when a client CA is given), or None."""
    cert, key, client_ca = settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
    if cert is None and key is None:
        if client_ca is not None:
            raise UnsafeConfiguration("--tls-client-ca needs --tls-cert and --tls-key")
        return None
    if cert is None or key is None:
        raise UnsafeConfiguration("TLS needs both --tls-cert and --tls-key")
    return grpc.ssl_server_credentials(
        [(key.read_bytes(), cert.read_bytes())],
        root_certificates=client_ca.read_bytes() if client_ca else None,
        require_client_auth=client_ca is not None,
    )
