"""API key format: `pgv_<key id>_<secret>`. The id finds the stored key; only a digest of the
256-bit random secret is stored, and digests are compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from pgvector_grpc_server.domain.principal import Principal, Role

KEY_PREFIX = "pgv_"
_KEY_ID_BYTES = 8
_SECRET_BYTES = 32


@dataclass(frozen=True)
class NewApiKey:
    """A freshly generated key: ``token`` is shown once, ``secret_sha256`` is what is stored."""

    key_id: str
    token: str
    secret_sha256: bytes


def generate_api_key() -> NewApiKey:
    key_id = secrets.token_hex(_KEY_ID_BYTES)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    return NewApiKey(key_id, f"{KEY_PREFIX}{key_id}_{secret}", secret_digest(secret))


def secret_digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def looks_like_api_key(credential: str) -> bool:
    return credential.startswith(KEY_PREFIX)


def split_api_key(token: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    parts = token[len(KEY_PREFIX) :].split("_", 1)
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


def secret_matches(secret: str, stored_sha256: bytes) -> bool:
    return hmac.compare_digest(secret_digest(secret), stored_sha256)


@dataclass(frozen=True)
class ApiKeyRecord:
    """A stored key, without anything that would let one call the server."""

    key_id: str
    tenant: str
    role: Role
    name: str
    collections: frozenset[str] | None
    created_at: datetime
    revoked_at: datetime | None

    def principal(self) -> Principal:
        return Principal(self.tenant, self.role, self.collections, subject=f"key:{self.key_id}")
