"""Reading what a server sent: every failure is a MalformedResponseError, never a JSON, numpy or
recursion error from inside the client."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np

from pgvector_grpc.errors import MalformedResponseError

# Deep enough for any metadata the server accepts (32 levels) and for older data, and far enough
# below Python's recursion limit (1000) that decoding, comparing or printing the value is safe.
MAX_JSON_DEPTH = 256
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[][{}]")
K = TypeVar("K")
V = TypeVar("V")


def json_value(text: str, what: str) -> Any:
    """The value of JSON text the server sent as ``what`` (e.g. "the metadata of document 'x'")."""
    if text.count("{") + text.count("[") > MAX_JSON_DEPTH and _depth(text) > MAX_JSON_DEPTH:
        raise MalformedResponseError(
            f"{what} nests deeper than {MAX_JSON_DEPTH} levels, more than this client decodes "
            "(stored before the server limited metadata depth? replace its top-level keys with update_metadata)"
        )
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedResponseError(f"{what} is not valid JSON") from None


def _depth(text: str) -> int:
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub("", text)):
        if bracket in "{[":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


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
