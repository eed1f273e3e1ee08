"""JWTs against a real server: HS256 with a shared secret (Supabase user tokens), RS256 / ES256 from a
JWKS file; expiry, audience, issuer and signature checked; tenant and role from claims."""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pgvector_grpc import Client, Document
from pgvector_grpc.errors import PermissionDeniedError, UnauthenticatedError

from tests.fix_server import ServerThread
from tests.security.keys import bearer

SECRET = "super-secret-jwt-token-with-at-least-32-characters"
AUDIENCE = "authenticated"
ISSUER = "https://project.supabase.co/auth/v1"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def jwks_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rsa_jwk = json.loads(RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
    ec_jwk = json.loads(ECAlgorithm.to_jwk(EC_KEY.public_key()))
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [{**rsa_jwk, "kid": "rsa-1", "use": "sig"}, {**ec_jwk, "kid": "ec-1"}]}))
    return path


@pytest.fixture(scope="module")
def server(database: str, jwks_file: Path) -> Iterator[ServerThread]:
    running = ServerThread(
        database, jwt_secret=SECRET, jwt_jwks=str(jwks_file), jwt_audience=AUDIENCE, jwt_issuer=ISSUER
    )
    with Client(running.address, timeout=30, metadata=bearer(token(role="service_role"))) as admin:
        admin.create_collection("notes", 3)
    yield running
    running.stop()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "user-1", "role": "authenticated", "aud": AUDIENCE, "iss": ISSUER, "iat": now, "exp": now + 300}
    return {k: v for k, v in {**base, **overrides}.items() if v is not None}


def token(key: Any = SECRET, algorithm: str = "HS256", kid: str | None = None, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key, algorithm=algorithm, headers={"kid": kid} if kid else None)


def call_count(server: ServerThread, credential: str) -> int:
    with Client(server.address, timeout=30, metadata=bearer(credential)) as c:
        return c.count("notes")


def test_hs256_user_token_is_a_writer(server: ServerThread) -> None:
    with Client(server.address, timeout=30, metadata=bearer(token())) as user:
        user.ingest("notes", [Document("n1", "hello", {}, [1.0, 0.0, 0.0])])
        assert user.count("notes") >= 1
        with pytest.raises(PermissionDeniedError) as raised:
            user.delete_collection("notes")
        assert raised.value.reason == "ROLE_NOT_ALLOWED"


@pytest.mark.parametrize(
    ("credential", "reason"),
    [
        (lambda: token(exp=int(time.time()) - 3600), "TOKEN_EXPIRED"),
        (lambda: token(aud="someone-else"), "TOKEN_AUDIENCE"),
        (lambda: token(iss="https://evil.example/auth/v1"), "TOKEN_ISSUER"),
        (lambda: token(exp=None), "TOKEN_INVALID"),
        (lambda: token(key="another-secret-of-at-least-32-characters"), "TOKEN_INVALID"),
        (lambda: _tampered(token()), "TOKEN_INVALID"),
        (lambda: jwt.encode(claims(), None, algorithm="none"), "TOKEN_INVALID"),
        (lambda: token(sub=None), "TOKEN_NO_TENANT"),
    ],
    ids=["expired", "audience", "issuer", "no-exp", "wrong-secret", "tampered", "alg-none", "no-sub"],
)
def test_bad_tokens_are_unauthenticated(server: ServerThread, credential: Any, reason: str) -> None:
    with pytest.raises(UnauthenticatedError) as raised:
        call_count(server, credential())
    assert raised.value.reason == reason


def _tampered(good: str) -> str:
    header, payload, signature = good.split(".")
    forged = _segment(claims(role="service_role"))
    assert forged != payload
    return f"{header}.{forged}.{signature}"


def test_small_clock_skew_is_accepted(server: ServerThread) -> None:
    assert call_count(server, token(exp=int(time.time()) - 5)) >= 0


def test_unmapped_role_is_denied(server: ServerThread) -> None:
    with pytest.raises(PermissionDeniedError) as raised:
        call_count(server, token(role="anon"))
    assert raised.value.reason == "ROLE_NOT_MAPPED"


def test_rs256_and_es256_from_the_jwks_file(server: ServerThread) -> None:
    assert call_count(server, token(RSA_KEY, "RS256", kid="rsa-1")) >= 0
    assert call_count(server, token(EC_KEY, "ES256", kid="ec-1")) >= 0


def test_asymmetric_token_signed_by_another_key_is_refused(server: ServerThread) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for kid in ("rsa-1", "unknown-kid"):
        with pytest.raises(UnauthenticatedError) as raised:
            call_count(server, token(stranger, "RS256", kid=kid))
        assert raised.value.reason == "TOKEN_INVALID"


def test_public_key_used_as_hmac_secret_is_refused(server: ServerThread) -> None:
    """Algorithm confusion: an HS256 token 'signed' with the RSA public key must not pass."""
    public_pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _segment({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"})
    payload = _segment(claims(role="service_role"))
    signature = jwt.utils.base64url_encode(hmac.new(public_pem, f"{header}.{payload}".encode(), "sha256").digest())
    with pytest.raises(UnauthenticatedError):
        call_count(server, f"{header}.{payload}.{signature.decode()}")


def _segment(value: dict[str, Any]) -> str:
    return jwt.utils.base64url_encode(json.dumps(value).encode()).decode()
