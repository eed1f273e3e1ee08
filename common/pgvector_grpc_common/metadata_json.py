"""Metadata as JSON text that PostgreSQL's jsonb gives back unchanged.

jsonb keeps a number's digits, not how it was written: Python writes 1e16 as ``1e+16``, which
jsonb turns into ``10000000000000000`` and which then reads back as an int. Such floats are
written positionally with a fraction (``10000000000000000.0``) so they come back as floats.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

_MARK = "\x00float:"  # NUL cannot occur in stored metadata, so the mark cannot clash with a value


def metadata_json(value: Any) -> str:
    """Compact JSON text of ``value`` in which every float reads back as a float."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if "e+" not in text:
        return text
    marked = json.dumps(_marked(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return _unmark(marked)


def _marked(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value) and "e+" in repr(value):
        return _MARK + format(Decimal(repr(value)), "f") + ".0"
    if isinstance(value, dict):
        return {k: _marked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_marked(v) for v in value]
    return value


def _unmark(text: str) -> str:
    quoted_mark = json.dumps(_MARK, ensure_ascii=False)[:-1]  # the opening quote and the escaped mark
    parts = text.split(quoted_mark)
    out = [parts[0]]
    for part in parts[1:]:
        number, _, rest = part.partition('"')
        out.append(number + rest)
    return "".join(out)


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[][{}]")


def nesting_exceeds(text: str, limit: int) -> bool:
    """Whether the objects and arrays of JSON ``text`` nest deeper than ``limit`` (brackets inside
    strings aside). Cheap for the common case: the text is scanned only when it holds more
    brackets than the limit."""
    if text.count("{") + text.count("[") <= limit:
        return False
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub("", text)):
        if bracket in "{[":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest > limit
