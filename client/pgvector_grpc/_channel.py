"""Channel options and the retry rule: only UNAVAILABLE, only idempotent reads (AIP-194)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from pgvector_grpc.errors import PgvectorGrpcError, UnavailableError, from_rpc_error

T = TypeVar("T")
BACKOFF_SECONDS = 0.1


def channel_options(max_message_bytes: int) -> list[tuple[str, Any]]:
    """Message size limits matching the server's, and keepalive for long streams."""
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
    ]


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


def call(fn: Callable[[], T], retries: int = 0) -> T:
    """Run a call, converting errors; retry UNAVAILABLE up to ``retries`` times with backoff."""
    for attempt in range(retries + 1):
        try:
            return fn()
        except grpc.RpcError as exc:
            error = from_rpc_error(exc)
        if not isinstance(error, UnavailableError) or attempt == retries:
            raise error from None
        time.sleep(BACKOFF_SECONDS * 2**attempt)
    raise AssertionError("unreachable")


async def acall(fn: Callable[[], Awaitable[T]], retries: int = 0) -> T:
    """The asyncio twin of :func:`call`."""
    for attempt in range(retries + 1):
        try:
            return await fn()
        except grpc.RpcError as exc:
            error: PgvectorGrpcError = from_rpc_error(exc)
        if not isinstance(error, UnavailableError) or attempt == retries:
            raise error from None
        await asyncio.sleep(BACKOFF_SECONDS * 2**attempt)
    raise AssertionError("unreachable")
