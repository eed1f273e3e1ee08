"""Filter tree -> SQL/JSON path predicate, evaluated by ``metadata @@ $filter``.

The predicate travels as a bound ``jsonpath`` parameter, never spliced into SQL. Inside it, keys
and values are JSON string literals (json.dumps, ASCII-escaped) and numbers are formatted by
Python, so no input can change the predicate's structure. Every condition is type-guarded
(``.type() == "number" && ...``), which makes it two-valued: a comparison between different
JSON types is false, never SQL/JSON "unknown", so NOT and != behave as callers expect.
Timestamp conditions read the field with ``.datetime()``; a filter holding one is evaluated with
``jsonb_path_match_tz`` in silent mode (see ``compile_filter``), so offsets and naive times compare
(naive = the session's UTC) and a string that is no timestamp matches nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

from pgvector_grpc_server.domain.models import AllOf, AnyOf, Condition, Filter, Not, Scalar, Timestamp

_COMPARISONS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def to_jsonpath(node: Filter, document: bool = False) -> str:
    """The predicate for a (validated) filter tree, evaluated on the metadata object, or with
    ``document`` on ``{"id": ..., "content": ..., "meta": metadata}`` (sql/030's document_object)."""
    if isinstance(node, AllOf):
        return _join(node.operands, " && ", "true", document)
    if isinstance(node, AnyOf):
        return _join(node.operands, " || ", "false", document)
    if isinstance(node, Not):
        return f"!({to_jsonpath(node.operand, document)})"
    return _condition(node, document)


@dataclass(frozen=True)
class CompiledFilter:
    """A filter as PostgreSQL evaluates it: its predicate and on what, and how, to run it."""

    jsonpath: str
    on_document: bool  # reads the id or the content: run on pgvector_grpc.document_object(...)
    timestamps: bool  # compares times: run with jsonb_path_match_tz, which handles offsets

    def predicate_sql(self) -> str:
        """The SQL condition on a collection's row; its one parameter is ``jsonpath``."""
        if self.on_document:
            return "jsonb_path_match_tz(pgvector_grpc.document_object(id, content, metadata), %s::jsonpath, '{}', true)"
        if self.timestamps:
            return "jsonb_path_match_tz(metadata, %s::jsonpath, '{}', true)"
        return "metadata @@ %s::jsonpath"  # the operator the metadata GIN index serves


def compile_filter(node: Filter) -> CompiledFilter:
    """The (validated) filter tree compiled for PostgreSQL."""
    conditions = list(_conditions(node))
    on_document = any(c.field != "metadata" for c in conditions)
    timestamps = any(isinstance(c.value, Timestamp) for c in conditions)
    return CompiledFilter(to_jsonpath(node, on_document), on_document, timestamps)


def _conditions(node: Filter) -> Iterator[Condition]:
    if isinstance(node, AllOf | AnyOf):
        for operand in node.operands:
            yield from _conditions(operand)
    elif isinstance(node, Not):
        yield from _conditions(node.operand)
    else:
        yield node


def _join(operands: tuple[Filter, ...], glue: str, empty: str, document: bool) -> str:
    if not operands:
        return f"({empty} == true)" if empty == "true" else "(true == false)"
    return "(" + glue.join(to_jsonpath(op, document) for op in operands) + ")"


def _literal(value: Scalar) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value)


def _json_type(value: Scalar) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"


def _path(path: tuple[str, ...]) -> str:
    return "$" + "".join("." + json.dumps(key) for key in path)


def _equals(field: str, value: Scalar) -> str:
    if value is None:
        return f'(!exists({field}) || {field}.type() == "null")'
    return f'({field}.type() == "{_json_type(value)}" && {field} == {_literal(value)})'


def _regex_escape(text: str) -> str:
    # In POSIX AREs a backslash before a non-alphanumeric character makes it literal.
    return re.sub(r"([^\w])", r"\\\1", text)


def _keys(cond: Condition, document: bool) -> tuple[str, ...]:
    if cond.field != "metadata":
        return (cond.field,)
    return ("meta", *cond.path) if document else cond.path


def _condition(cond: Condition, document: bool) -> str:
    field = _path(_keys(cond, document))
    op, value = cond.operator, cond.value
    if op == "exists":
        return f"exists({field})" if value else f"!exists({field})"
    if op in ("in", "nin"):
        assert isinstance(value, tuple)
        any_equal = "(" + " || ".join(_equals(field, v) for v in value) + ")" if value else "(true == false)"
        return any_equal if op == "in" else f"!{any_equal}"
    assert not isinstance(value, tuple)
    if isinstance(value, Timestamp):
        symbol = {"eq": "==", "ne": "==", **_COMPARISONS}[op]
        moment = f"{json.dumps(value.iso)}.datetime()"
        test = f'({field}.type() == "string" && {field}.datetime() {symbol} {moment})'
        return f"!{test}" if op == "ne" else test
    if op == "eq":
        return _equals(field, value)
    if op == "ne":
        return f"!{_equals(field, value)}"
    if op in _COMPARISONS:
        return f'({field}.type() == "{_json_type(value)}" && {field} {_COMPARISONS[op]} {_literal(value)})'
    # contains: a list holding the value, or a string holding it as a substring
    element = f'@.type() == "{_json_type(value)}" && @ == {_literal(value)}'
    in_list = f'({field}.type() == "array" && exists({field}[*] ? ({element})))'
    if isinstance(value, str):
        pattern = json.dumps(_regex_escape(value))
        return f'({in_list} || ({field}.type() == "string" && {field} like_regex {pattern}))'
    return in_list
