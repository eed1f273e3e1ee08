"""What the sync and asyncio clients share: stubs, default deadline, retries, call metadata, credentials."""

from __future__ import annotations

import ipaddress
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from pgvector_grpc.errors import PlaintextCredentialWarning

DEFAULT: Any = object()
"""Marks a ``timeout`` argument left out: the client's default applies."""

ADDRESS_ENV = "PGVECTOR_GRPC_ADDRESS"
API_KEY_ENV = "PGVECTOR_GRPC_API_KEY"
DEFAULT_ADDRESS = "127.0.0.1:50051"

TokenSource = str | Callable[[], str]
"""A bearer credential: the value itself, or a function returning the current one (called before each call)."""


def default_address(address: str | None) -> str:
    """``address``, else ``$PGVECTOR_GRPC_ADDRESS``, else 127.0.0.1:50051."""
    return address or os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS


def _checked_bearer(value: object, what: str) -> str:
    """A credential that can travel in a header; the error never shows the value."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    text = value.strip()
    if not text or not text.isascii() or not text.isprintable() or " " in text:
        raise ValueError(f"{what} is empty or has characters a header cannot carry (value not shown)")
    return text


class BearerCredential:
    """The ``authorization: Bearer …`` header of every call. Its repr never shows the secret."""

    def __init__(self, source: TokenSource, kind: str, named: str | None = None) -> None:
        self._source = source
        self._static = None if callable(source) else _checked_bearer(source, named or kind)
        self.kind = kind

    def header(self) -> tuple[str, str]:
        """The header for the next call (a token function is asked each time, so it can refresh)."""
        if self._static is not None:
            return ("authorization", f"Bearer {self._static}")
        assert callable(self._source)
        return ("authorization", f"Bearer {_checked_bearer(self._source(), 'the token function result')}")

    def __repr__(self) -> str:
        return f"<BearerCredential {self.kind}: ***>"


def bearer_credential(
    api_key: str | None, token: TokenSource | None, metadata: Sequence[tuple[str, str]]
) -> BearerCredential | None:
    """The credential to send: ``api_key`` or ``token``, else ``$PGVECTOR_GRPC_API_KEY`` unless
    ``metadata`` already carries an authorization header."""
    has_authorization = any(key.lower() == "authorization" for key, _ in metadata)
    if api_key is not None and token is not None:
        raise ValueError("give api_key or token, not both")
    if (api_key is not None or token is not None) and has_authorization:
        raise ValueError("metadata already has an authorization header; drop it or the api_key / token argument")
    if api_key is not None:
        return BearerCredential(api_key, "api_key")
    if token is not None:
        return BearerCredential(token, "token")
    from_env = os.environ.get(API_KEY_ENV, "")
    if from_env.strip() and not has_authorization:
        return BearerCredential(from_env, "api_key", f"${API_KEY_ENV}")
    return None


def is_local_address(address: str) -> bool:
    """Whether ``address`` (host:port, [v6]:port, or a unix: socket) stays on this machine."""
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    if address.startswith(("dns:", "ipv4:", "ipv6:")):  # gRPC target names: the endpoint comes last
        address = address.split("/")[-1].removeprefix("ipv4:").removeprefix("ipv6:")
    host = address.rsplit(":", 1)[0] if address.count(":") == 1 or address.startswith("[") else address
    host = host.strip("[]").lower()
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_if_plaintext_credential(address: str, credential: BearerCredential | None, tls: bool) -> None:
    """Warn when a credential would cross the network in the clear (anyone on the path could reuse it)."""
    if credential is not None and not tls and not is_local_address(address):
        warnings.warn(
            f"the {credential.kind} will be sent to {address} without TLS, readable by anyone on the"
            " network path; use TLS (tls=True or tls=<CA file>; --tls or --tls-ca on the command line) unless"
            " a trusted proxy encrypts this hop",
            PlaintextCredentialWarning,
            stacklevel=4,  # the line that created the client
        )


class ClientBase:
    """Holds the per-call options (each client creates its stubs, typed for its kind of channel)."""

    def __init__(
        self,
        address: str,
        timeout: float | None,
        retries: int,
        metadata: Sequence[tuple[str, str]],
        credential: BearerCredential | None = None,
        tls: bool = False,
    ) -> None:
        self.address = address
        self._timeout = timeout
        self._retries = retries
        self._metadata = tuple(metadata)
        self._credential = credential
        self._tls = tls
        warn_if_plaintext_credential(address, credential, tls)

    def _kw(self, timeout: float | None) -> dict[str, Any]:
        metadata = self._metadata if self._credential is None else (*self._metadata, self._credential.header())
        return {"timeout": self._timeout if timeout is DEFAULT else timeout, "metadata": metadata}

    def __repr__(self) -> str:
        auth = "none" if self._credential is None else self._credential.kind
        return f"{type(self).__name__}({self.address!r}, tls={self._tls}, auth={auth!r})"
