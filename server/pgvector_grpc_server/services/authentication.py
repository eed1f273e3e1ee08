"""Turn a bearer credential (an API key or a JWT) into a Principal, or refuse it.

Nothing here logs or echoes a credential: errors name the reason, never the key or token."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

from pgvector_grpc_server.domain.api_keys import ApiKeyRecord, looks_like_api_key, secret_matches, split_api_key
from pgvector_grpc_server.domain.errors import PermissionDenied, Unauthenticated
from pgvector_grpc_server.domain.principal import Principal, Role
from pgvector_grpc_server.storage.api_keys import ApiKeyStore

log = logging.getLogger(__name__)

ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"})
# Bounds the memory of the key and token caches (made-up key ids are cached too).
MAX_CACHED_KEYS = 10_000


def parse_role_map(text: str) -> dict[str, Role]:
    """``authenticated=writer,service_role=admin`` → {claim value: role}."""
    mapping: dict[str, Role] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        claim_value, sep, role = item.partition("=")
        if not sep or not claim_value.strip():
            raise ValueError(f"role mapping {item!r} is not CLAIM_VALUE=ROLE")
        mapping[claim_value.strip()] = Role.named(role.strip())
    return mapping


@dataclass(frozen=True)
class JwtSettings:
    """How JWTs are verified. ``jwks`` is a JWKS file path or an http(s) URL the operator chose."""

    secret: str | None = field(default=None, repr=False)
    jwks: str | None = None
    audience: str | None = None
    issuer: str | None = None
    tenant_claim: str = "sub"
    role_claim: str = "role"
    roles: Mapping[str, Role] = field(default_factory=dict)
    leeway_seconds: float = 30.0

    @property
    def enabled(self) -> bool:
        return bool(self.secret or self.jwks)


class JwksKeys:
    """Public keys from a JWKS file or URL, reloaded after ``max_age`` or when a token names an unknown
    key id (at most once per ``min_reload_interval``, so forged key ids cannot make us fetch in a loop)."""

    def __init__(self, source: str, *, max_age: float = 300.0, min_reload_interval: float = 30.0) -> None:
        self._source = source
        self._max_age = max_age
        self._min_reload_interval = min_reload_interval
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._loaded_at = -float("inf")
        self._lock = asyncio.Lock()

    def _fetch(self) -> jwt.PyJWKSet:
        if self._source.startswith(("https://", "http://")):
            return jwt.PyJWKClient(self._source, cache_jwk_set=False, timeout=5).get_jwk_set()
        return jwt.PyJWKSet.from_json(Path(self._source).read_text())

    async def _reload(self) -> None:
        async with self._lock:
            if time.monotonic() - self._loaded_at < self._min_reload_interval:
                return
            try:
                key_set = await asyncio.to_thread(self._fetch)
            except Exception as exc:
                log.warning("could not load the JWKS: %s", exc)
                self._loaded_at = time.monotonic()
                return
            keys: dict[str | None, jwt.PyJWK] = {key.key_id: key for key in key_set.keys}
            if len(key_set.keys) == 1:
                keys[None] = key_set.keys[0]
            self._keys, self._loaded_at = keys, time.monotonic()

    async def key(self, key_id: str | None) -> jwt.PyJWK:
        if key_id not in self._keys or time.monotonic() - self._loaded_at > self._max_age:
            await self._reload()
        try:
            return self._keys[key_id]
        except KeyError:
            raise Unauthenticated("the token is signed with an unknown key", "TOKEN_INVALID") from None


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by dotted path, e.g. ``app_metadata.tenant``."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


class JwtVerifier:
    """HS256 with a shared secret (Supabase user tokens) and/or asymmetric keys from a JWKS.

    A verified token is remembered for ``cache_seconds`` (never past its expiry): verifying a
    signature costs about ten times what the rest of a call's authentication does."""

    def __init__(self, settings: JwtSettings, *, cache_seconds: float = 2.0) -> None:
        self._settings = settings
        self._jwks = JwksKeys(settings.jwks) if settings.jwks else None
        self._cache_seconds = cache_seconds
        self._verified: dict[str, tuple[Principal, float]] = {}

    async def principal(self, token: str) -> Principal:
        now = time.time()
        cached = self._verified.get(token)
        if cached is not None and now < cached[1]:
            return cached[0]
        principal, expires_at = await self._verify(token)
        if len(self._verified) >= MAX_CACHED_KEYS:
            self._verified.clear()
        self._verified[token] = (principal, min(expires_at + self._settings.leeway_seconds, now + self._cache_seconds))
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthenticated("the credential is neither an API key nor a JWT", "CREDENTIALS_INVALID") from None
        algorithm = header.get("alg")
        key: Any
        if algorithm == "HS256" and self._settings.secret:
            key = self._settings.secret
        elif algorithm in ASYMMETRIC_ALGORITHMS and self._jwks is not None:
            key = await self._jwks.key(header.get("kid"))
        else:
            raise Unauthenticated("the token's signing algorithm is not accepted", "TOKEN_INVALID")
        claims = self._decode(token, key, algorithm)
        return self._principal_of(claims), float(claims["exp"])

    def _decode(self, token: str, key: Any, algorithm: str) -> dict[str, Any]:
        settings = self._settings
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway_seconds,
                options={"require": ["exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired", "TOKEN_EXPIRED") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("the token's audience is not accepted", "TOKEN_AUDIENCE") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("the token's issuer is not accepted", "TOKEN_ISSUER") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("the token is not valid yet", "TOKEN_NOT_YET_VALID") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("the token is invalid", "TOKEN_INVALID") from None

    def _principal_of(self, claims: Mapping[str, Any]) -> Principal:
        settings = self._settings
        tenant = _claim(claims, settings.tenant_claim)
        if not isinstance(tenant, str | int) or tenant == "":
            raise Unauthenticated(
                f"the token has no {settings.tenant_claim} claim", "TOKEN_NO_TENANT", {"claim": settings.tenant_claim}
            )
        role_value = _claim(claims, settings.role_claim)
        role = settings.roles.get(role_value) if isinstance(role_value, str) else None
        if role is None:
            raise PermissionDenied(
                f"the token's {settings.role_claim} claim maps to no role",
                "ROLE_NOT_MAPPED",
                {"claim": settings.role_claim},
            )
        subject = claims.get("sub")
        return Principal(str(tenant), role, None, subject=f"jwt:{subject}" if subject else "jwt")


@dataclass
class _CachedKey:
    record: ApiKeyRecord | None
    secret_sha256: bytes
    fetched_at: float


class Authenticator:
    """Decides whether calls must authenticate, and authenticates them.

    API key lookups are cached for ``key_cache_seconds``, so a revoked key stops working within that
    time. Authentication is required when ``always_required`` (forced, JWTs configured, or a
    non-loopback address) or as soon as any API key exists."""

    def __init__(
        self,
        keys: ApiKeyStore,
        jwt_settings: JwtSettings,
        *,
        always_required: bool,
        key_cache_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = keys
        self._jwt = JwtVerifier(jwt_settings, cache_seconds=key_cache_seconds) if jwt_settings.enabled else None
        self._required = always_required or jwt_settings.enabled
        self._key_cache_seconds = key_cache_seconds
        self._clock = clock
        self._cache: dict[str, _CachedKey] = {}
        self._keys_checked_at = -float("inf")

    async def required(self) -> bool:
        """Whether calls must authenticate; once true it stays true."""
        if self._required:
            return True
        now = self._clock()
        if now - self._keys_checked_at >= self._key_cache_seconds:
            self._keys_checked_at = now
            self._required = await self._keys.any_exist()
        return self._required

    async def authenticate(self, credential: str | None) -> Principal:
        if not credential:
            raise Unauthenticated(
                "this server requires authentication: send 'authorization: Bearer <API key or JWT>'",
                "CREDENTIALS_MISSING",
            )
        if looks_like_api_key(credential):
            return await self._api_key_principal(credential)
        if self._jwt is not None:
            return await self._jwt.principal(credential)
        raise Unauthenticated("the credential is not an API key", "CREDENTIALS_INVALID")

    async def _api_key_principal(self, token: str) -> Principal:
        parts = split_api_key(token)
        if parts is None:
            raise Unauthenticated("the API key is malformed", "API_KEY_INVALID")
        key_id, secret = parts
        cached = await self._cached_key(key_id)
        # One answer for unknown, revoked and wrong-secret keys: the caller learns nothing about ids.
        if cached.record is None or not secret_matches(secret, cached.secret_sha256):
            raise Unauthenticated("the API key is unknown, revoked or wrong", "API_KEY_INVALID")
        return cached.record.principal()

    async def _cached_key(self, key_id: str) -> _CachedKey:
        now = self._clock()
        cached = self._cache.get(key_id)
        if cached is not None and now - cached.fetched_at < self._key_cache_seconds:
            return cached
        found = await self._keys.find_active(key_id)
        cached = _CachedKey(None, b"", now) if found is None else _CachedKey(found[0], found[1], now)
        if len(self._cache) >= MAX_CACHED_KEYS:
            self._cache.clear()
        self._cache[key_id] = cached
        return cached
