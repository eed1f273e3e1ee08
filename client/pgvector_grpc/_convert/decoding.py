"""Reading what a server sent: every failure is a MalformedResponseError, never a JSON, numpy or
recursion error from inside the client."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np
from pgvector_grpc_common.metadata_json import nesting_exceeds

from pgvector_grpc.errors import MalformedResponseError

# Deep enough for any metadata the server accepts (32 levels) and for older data, and far enough
# below Python's recursion limit (1000) that decoding, comparing or printing the value is safe.
MAX_JSON_DEPTH = 256
K = TypeVar("K")
V = TypeVar("V")


def json_value(text: str, what: str) -> Any:
    """The value of JSON text the server sent as ``what`` (e.g. "the metadata of document 'x'")."""
    if nesting_exceeds(text, MAX_JSON_DEPTH):
        raise MalformedResponseError(
            f"{what} nests deeper than {MAX_JSON_DEPTH} levels, more than this client decodes "
            "(stored before the server limited metadata depth? replace its top-level keys with update_metadata)"
        )
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedResponseError(f"{what} is not valid JSON") from None


def known(names: Mapping[K, V], value: K, what: str) -> V:
    """The name of an enum value this client knows (a newer server may send others)."""
    try:
        return names[value]
    except KeyError:
        raise MalformedResponseError(f"unknown {what} {value!r} (is the client older than the server?)") from None


def floats(data: bytes, dtype: str, what: str) -> np.ndarray[Any, Any]:
    """The little-endian floats of packed bytes."""
    width = np.dtype(dtype).itemsize
    if len(data) % width:
        raise MalformedResponseError(f"{what} has {len(data)} bytes, not a multiple of {width}")
    return np.frombuffer(data, dtype=dtype)
