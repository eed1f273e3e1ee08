"""Haystack filter dicts -> the client's typed filters, with Haystack's semantics.

Haystack's grammar: ``{"field": "meta.x", "operator": "==", "value": 1}`` and
``{"operator": "AND" | "OR" | "NOT", "conditions": [...]}`` (NOT negates the AND of its
conditions). ``None`` compares as Haystack's own InMemoryDocumentStore does: ``== None`` matches a
missing or null field, ``!= None`` a present non-null one, and ordering comparisons with ``None``
match nothing. Ordering comparisons take numbers or ISO 8601 dates (sent as timestamps, compared in
time by the server); any other string or a list is a FilterError, as in Haystack. Fields are
``id``, ``content`` and ``meta.<key>[.<key>...]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from haystack.errors import FilterError

from pgvector_grpc.filters import And, Condition, Field, Filter, Not, Or

_COMPARISONS: dict[str, Callable[[Field, Any], Condition]] = {
    "==": Field.__eq__,
    "!=": Field.__ne__,
    ">": Field.__gt__,
    ">=": Field.__ge__,
    "<": Field.__lt__,
    "<=": Field.__le__,
    "in": Field.is_in,
    "not in": Field.not_in,
}
_ORDERING = {">", ">=", "<", "<="}
_DOCUMENT_FIELDS = {"id": Field.id, "content": Field.content}


def meta_key(field: str) -> str:
    """A metadata field name without Haystack's ``meta.`` prefix."""
    return field.removeprefix("meta.")


def to_filter(filters: Mapping[str, Any] | None) -> Filter | None:
    """The client filter of a Haystack filter dict; None for no (or empty) filters."""
    if not filters:
        return None
    if not isinstance(filters, Mapping):
        raise FilterError(f"filters must be a dictionary, got {type(filters).__name__}")
    return _node(filters, "filters")


def _node(node: Any, where: str) -> Filter:
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
        return And(*operands)
    if operator == "OR":
        return Or(*operands)
    if operator == "NOT":
        return Not(And(*operands))
    raise FilterError(f"{where}: unknown logical operator {operator!r} (use AND, OR or NOT)")


def _comparison(node: Mapping[str, Any], where: str) -> Filter:
    for key in ("operator", "value"):
        if key not in node:
            raise FilterError(f"{where} (field {node['field']!r}) needs a {key!r} key")
    name, operator, value = node["field"], node["operator"], node["value"]
    if operator not in _COMPARISONS:
        raise FilterError(f"{where}: unknown comparison operator {operator!r}")
    field = _field(name, where)
    if operator in ("in", "not in"):
        if not isinstance(value, list):
            raise FilterError(f"{where}: operator {operator!r} needs a list value, got {type(value).__name__}")
    elif operator in _ORDERING:
        if value is None:
            return Or()  # Haystack: an ordering comparison with None is false; an empty OR matches nothing
        value = _ordering_value(value, operator, where)
    elif isinstance(value, list | tuple | Mapping):
        raise FilterError(f"{where}: operator {operator!r} needs a scalar value, got {type(value).__name__}")
    elif isinstance(value, datetime):
        value = value.isoformat()  # equality compares the stored text
    try:
        return _COMPARISONS[operator](field, value)
    except ValueError as exc:
        raise FilterError(f"{where}.{exc}") from None


def _field(name: Any, where: str) -> Field:
    if isinstance(name, str) and name in _DOCUMENT_FIELDS:
        return _DOCUMENT_FIELDS[name]()
    if not isinstance(name, str) or not name.startswith("meta.") or name == "meta.":
        raise FilterError(
            f"{where}: field {name!r} is not supported: filters apply to 'id', 'content' and metadata"
            " fields written 'meta.<name>'"
        )
    return Field(*meta_key(name).split("."))


def _ordering_value(value: Any, operator: str, where: str) -> Any:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise FilterError(
                f"{where}: operator {operator!r} compares numbers or ISO 8601 dates, got the string {value!r}"
            ) from None
    if isinstance(value, datetime) or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    raise FilterError(f"{where}: operator {operator!r} compares numbers or ISO 8601 dates, got {value!r}")
