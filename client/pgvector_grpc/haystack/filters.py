"""Haystack filter dicts -> the server's filter, with Haystack's semantics.

Haystack's grammar: ``{"field": "meta.x", "operator": "==", "value": 1}`` and
``{"operator": "AND" | "OR" | "NOT", "conditions": [...]}`` (NOT negates the AND of its
conditions). ``None`` compares as Haystack's own InMemoryDocumentStore does: ``== None`` matches a
missing or null field, ``!= None`` a present non-null one, and ordering comparisons with ``None``
match nothing. Ordering comparisons take numbers or ISO 8601 dates (sent as timestamps, compared in
time by the server); any other string or a list is a FilterError, as in Haystack. Fields are
``id``, ``content`` and ``meta.<key>[.<key>...]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from haystack.errors import FilterError

from pgvector_grpc.filters import value_pb
from pgvector_grpc.v1 import document_pb2

_COMPARISONS = {
    "==": document_pb2.OPERATOR_EQ,
    "!=": document_pb2.OPERATOR_NE,
    ">": document_pb2.OPERATOR_GT,
    ">=": document_pb2.OPERATOR_GTE,
    "<": document_pb2.OPERATOR_LT,
    "<=": document_pb2.OPERATOR_LTE,
    "in": document_pb2.OPERATOR_IN,
    "not in": document_pb2.OPERATOR_NIN,
}
_ORDERING = {">", ">=", "<", "<="}
_DOCUMENT_FIELDS = {"id": document_pb2.DOCUMENT_FIELD_ID, "content": document_pb2.DOCUMENT_FIELD_CONTENT}
_MATCH_NOTHING = document_pb2.Filter(any_of=document_pb2.FilterList())


def meta_key(field: str) -> str:
    """A metadata field name without Haystack's ``meta.`` prefix."""
    return field.removeprefix("meta.")


def to_filter(filters: Mapping[str, Any] | None) -> document_pb2.Filter | None:
    """The server filter of a Haystack filter dict; None for no (or empty) filters."""
    if not filters:
        return None
    if not isinstance(filters, Mapping):
        raise FilterError(f"filters must be a dictionary, got {type(filters).__name__}")
    return _node(filters, "filters")


def _value(value: Any, where: str) -> document_pb2.Value:
    try:
        return value_pb(value, where)
    except ValueError as exc:
        raise FilterError(str(exc)) from None


def _node(node: Any, where: str) -> document_pb2.Filter:
    if not isinstance(node, Mapping):
        raise FilterError(f"{where} must be a dictionary, got {type(node).__name__}")
    if "field" in node:
        return _comparison(node, where)
    if "operator" not in node:
        raise FilterError(f"{where} needs an 'operator' key: {dict(node)}")
    if "conditions" not in node:
        raise FilterError(f"{where}: logical operator {node['operator']!r} needs a 'conditions' key")
    operator, conditions = node["operator"], node["conditions"]
    if not isinstance(conditions, list):
        raise FilterError(f"{where}.conditions must be a list")
    operands = [_node(c, f"{where}.conditions[{i}]") for i, c in enumerate(conditions)]
    if operator == "AND":
        return document_pb2.Filter(all_of=document_pb2.FilterList(filters=operands))
    if operator == "OR":
        return document_pb2.Filter(any_of=document_pb2.FilterList(filters=operands))
    if operator == "NOT":
        negated = document_pb2.Filter()
        getattr(negated, "not").all_of.filters.extend(operands)  # `not` is a Python keyword
        return negated
    raise FilterError(f"{where}: unknown logical operator {operator!r} (use AND, OR or NOT)")


def _comparison(node: Mapping[str, Any], where: str) -> document_pb2.Filter:
    for key in ("operator", "value"):
        if key not in node:
            raise FilterError(f"{where} (field {node['field']!r}) needs a {key!r} key")
    field, operator, value = node["field"], node["operator"], node["value"]
    if operator not in _COMPARISONS:
        raise FilterError(f"{where}: unknown comparison operator {operator!r}")
    document_field = _DOCUMENT_FIELDS.get(field) if isinstance(field, str) else None
    if document_field is None and (not isinstance(field, str) or not field.startswith("meta.") or field == "meta."):
        raise FilterError(
            f"{where}: field {field!r} is not supported: filters apply to 'id', 'content' and metadata"
            " fields written 'meta.<name>'"
        )
    path = [] if document_field is not None else meta_key(field).split(".")
    if operator in ("in", "not in"):
        if not isinstance(value, list):
            raise FilterError(f"{where}: operator {operator!r} needs a list value, got {type(value).__name__}")
        value_message = _value(value, f"{where}.value")
    elif operator in _ORDERING:
        if value is None:
            return _MATCH_NOTHING  # Haystack: an ordering comparison with None is false
        value_message = _ordering_value(value, operator, where)
    else:
        if isinstance(value, list | tuple | Mapping):
            raise FilterError(f"{where}: operator {operator!r} needs a scalar value, got {type(value).__name__}")
        value_message = _value(value.isoformat() if isinstance(value, datetime) else value, f"{where}.value")
    condition = document_pb2.Condition(
        path=path,
        operator=_COMPARISONS[operator],
        value=value_message,
        field=document_field or document_pb2.DOCUMENT_FIELD_UNSPECIFIED,
    )
    return document_pb2.Filter(condition=condition)


def _ordering_value(value: Any, operator: str, where: str) -> document_pb2.Value:
    if isinstance(value, datetime):
        return document_pb2.Value(datetime_value=value.isoformat())
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise FilterError(
                f"{where}: operator {operator!r} compares numbers or ISO 8601 dates, got the string {value!r}"
            ) from None
        return document_pb2.Value(datetime_value=value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FilterError(f"{where}: operator {operator!r} compares numbers or ISO 8601 dates, got {value!r}")
    return _value(value, f"{where}.value")
