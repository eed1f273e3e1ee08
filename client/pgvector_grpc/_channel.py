"""Channel options, TLS credentials, and the retry rule: only UNAVAILABLE, only idempotent reads (AIP-194)."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc

from pgvector_grpc.errors import PgvectorGrpcError, UnavailableError, from_rpc_error

T = TypeVar("T")
# The retry policy of idempotent reads, on UNAVAILABLE only: waits of 0.1 s, 0.2 s, 0.4 s ... (at most
# 1 s), each between half and all of that (jitter, so that clients failed together do not return
# together), and no retry that would start more than RETRY_BUDGET_SECONDS after the first attempt.
# A server whose database is down answers UNAVAILABLE in well under a second, so such a read fails
# within about RETRY_BUDGET_SECONDS instead of waiting for the database.
BACKOFF_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 1.0
RETRY_BUDGET_SECONDS = 3.0

Pem = bytes | str | os.PathLike[str]
"""PEM data as bytes, or the path of a PEM file."""


def channel_options(max_message_bytes: int, tls_server_name: str | None = None) -> list[tuple[str, Any]]:
    """Message size limits matching the server's, keepalive for long streams, and the name the
    server's certificate must carry when it differs from the address's host."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
    ]
    if tls_server_name:
        options.append(("grpc.ssl_target_name_override", tls_server_name))
    return options


def _pem(source: Pem, what: str) -> bytes:
    if isinstance(source, bytes):
        return source
    path = Path(source)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the {what} file {str(path)!r}: {exc.strerror}") from None


def tls_credentials(
    tls: bool | Pem,
    client_cert: Pem | None,
    client_key: Pem | None,
    credentials: grpc.ChannelCredentials | None,
) -> grpc.ChannelCredentials | None:
    """The channel's credentials: None for plaintext; TLS when ``tls`` is True (the system's root
    certificates), PEM bytes or a PEM file path (those roots only), or a client certificate is given
    (mTLS, which implies TLS). ``credentials`` built by the caller are taken as they are."""
    if credentials is not None:
        if tls is not False or client_cert is not None or client_key is not None:
            raise ValueError("give credentials, or tls / client_cert / client_key, not both")
        return credentials
    if (client_cert is None) != (client_key is None):
        raise ValueError("client_cert and client_key go together (mTLS)")
    if tls is False and client_cert is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=None if isinstance(tls, bool) else _pem(tls, "root certificates"),
        private_key=None if client_key is None else _pem(client_key, "client key"),
        certificate_chain=None if client_cert is None else _pem(client_cert, "client certificate"),
    )


def sync_channel(
    address: str, options: list[tuple[str, Any]], credentials: grpc.ChannelCredentials | None
) -> grpc.Channel:
    """A blocking channel."""
    if credentials is None:
        return grpc.insecure_channel(address, options=options)
    return grpc.secure_channel(address, credentials, options=options)


def aio_channel(
    address: str, options: list[tuple[str, Any]], credentials: grpc.ChannelCredentials | None
) -> grpc.aio.Channel:
    """An asyncio channel."""
    if credentials is None:
        return grpc.aio.insecure_channel(address, options=options)
    return grpc.aio.secure_channel(address, credentials, options=options)


def close_sync_channel(channel: grpc.Channel) -> None:
    """Close a blocking channel, cancelling its calls."""
    channel.close()


async def close_aio_channel(channel: grpc.aio.Channel) -> None:
    """Close an asyncio channel at once, cancelling its calls."""
    await channel.close(None)


def retry_pause(attempt: int, started: float) -> float | None:
    """How long to wait before retry number ``attempt + 1`` of a call first tried at ``started``
    (time.monotonic()), or None when the retry budget is spent."""
    ceiling: float = min(BACKOFF_MAX_SECONDS, BACKOFF_SECONDS * 2.0**attempt)
    pause = ceiling / 2 + random.uniform(0, ceiling / 2)
    if time.monotonic() + pause - started > RETRY_BUDGET_SECONDS:
        return None
    return pause


def call(fn: Callable[[], T], retries: int = 0) -> T:
    """Run a call, converting errors; retry UNAVAILABLE up to ``retries`` times (see RETRY_BUDGET_SECONDS)."""
    started = time.monotonic()
    for attempt in range(retries + 1):
        try:
            return fn()
        except grpc.RpcError as exc:
            error = from_rpc_error(exc)
        pause = None if attempt == retries else retry_pause(attempt, started)
        if not isinstance(error, UnavailableError) or pause is None:
            raise error from None
        time.sleep(pause)
    raise AssertionError("unreachable")


async def acall(fn: Callable[[], Awaitable[T]], retries: int = 0) -> T:
    """The asyncio twin of :func:`call`."""
    started = time.monotonic()
    for attempt in range(retries + 1):
        try:
            return await fn()
        except grpc.RpcError as exc:
            error: PgvectorGrpcError = from_rpc_error(exc)
        pause = None if attempt == retries else retry_pause(attempt, started)
        if not isinstance(error, UnavailableError) or pause is None:
            raise error from None
        await asyncio.sleep(pause)
    raise AssertionError("unreachable")
