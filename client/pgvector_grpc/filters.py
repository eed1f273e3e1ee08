"""Filters: typed builders (``Field("year") >= 2020``, ``Field.id().is_in([...])``) and Chroma /
Mongo-style dicts, compiled to protobuf."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeAlias

from pgvector_grpc.v1 import document_pb2

_OPERATORS = {
    "$eq": document_pb2.OPERATOR_EQ,
    "$ne": document_pb2.OPERATOR_NE,
    "$gt": document_pb2.OPERATOR_GT,
    "$gte": document_pb2.OPERATOR_GTE,
    "$lt": document_pb2.OPERATOR_LT,
    "$lte": document_pb2.OPERATOR_LTE,
    "$in": document_pb2.OPERATOR_IN,
    "$nin": document_pb2.OPERATOR_NIN,
    "$exists": document_pb2.OPERATOR_EXISTS,
    "$contains": document_pb2.OPERATOR_CONTAINS,
}
_DOCUMENT_FIELDS = {
    "metadata": document_pb2.DOCUMENT_FIELD_UNSPECIFIED,
    "id": document_pb2.DOCUMENT_FIELD_ID,
    "content": document_pb2.DOCUMENT_FIELD_CONTENT,
}
DocumentField = Literal["metadata", "id", "content"]


def value_pb(value: Any, where: str = "value") -> document_pb2.Value:
    """A filter Value from a Python scalar or list; a datetime compares in time (as ISO 8601)."""
    if value is None:
        return document_pb2.Value(null_value=True)
    if isinstance(value, bool):  # before int: bool is an int
        return document_pb2.Value(bool_value=value)
    if isinstance(value, int):
        return document_pb2.Value(int_value=value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value} is not a finite number")
        return document_pb2.Value(double_value=value)
    if isinstance(value, str):
        return document_pb2.Value(string_value=value)
    if isinstance(value, datetime):
        return document_pb2.Value(datetime_value=value.isoformat())
    if isinstance(value, list | tuple):
        items = [value_pb(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return document_pb2.Value(list_value=document_pb2.ValueList(values=items))
    raise ValueError(f"{where}: {type(value).__name__} is not a filter value")


@dataclass(frozen=True)
class Condition:
    """A comparison of one field: metadata at ``path``, or the document's id or content.
    Raises ValueError when ``value`` cannot be sent (a NaN, an object, ...)."""

    path: tuple[str, ...]
    operator: int
    value: Any
    document_field: DocumentField = "metadata"
    _value_pb: document_pb2.Value = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_value_pb", value_pb(self.value))

    def to_pb(self) -> document_pb2.Filter:
        """The protobuf form."""
        cond = document_pb2.Condition(
            path=self.path,
            operator=self.operator,  # type: ignore[arg-type]
            value=self._value_pb,
            field=_DOCUMENT_FIELDS[self.document_field],
        )
        return document_pb2.Filter(condition=cond)

    def __and__(self, other: FilterLike) -> And:
        return And(self, other)

    def __or__(self, other: FilterLike) -> Or:
        return Or(self, other)

    def __invert__(self) -> Not:
        return Not(self)


@dataclass(frozen=True, init=False)
class _Group:
    operands: tuple[FilterLike, ...]
    _kind = ""

    def __init__(self, *operands: FilterLike) -> None:
        object.__setattr__(self, "operands", operands)

    def to_pb(self) -> document_pb2.Filter:
        """The protobuf form."""
        group = document_pb2.FilterList(filters=[_required_pb(o) for o in self.operands])
        node = document_pb2.Filter()
        getattr(node, self._kind).CopyFrom(group)
        return node

    __and__ = Condition.__and__
    __or__ = Condition.__or__
    __invert__ = Condition.__invert__


class And(_Group):
    """Every operand matches."""

    _kind = "all_of"


class Or(_Group):
    """Some operand matches."""

    _kind = "any_of"


@dataclass(frozen=True)
class Not:
    """The operand does not match."""

    operand: FilterLike

    def to_pb(self) -> document_pb2.Filter:
        """The protobuf form."""
        return _not_pb(_required_pb(self.operand))

    __and__ = Condition.__and__
    __or__ = Condition.__or__
    __invert__ = Condition.__invert__


class Field:
    """A metadata field, named by its keys from the top: ``Field("author", "name")``; or the
    document's id or content: ``Field.id()``, ``Field.content()``."""

    def __init__(self, *path: str) -> None:
        if not path:
            raise ValueError("Field needs at least one key")
        self.path = path
        self._document_field: DocumentField = "metadata"

    @classmethod
    def id(cls) -> Field:
        """The document's id."""
        return cls._of_document("id")

    @classmethod
    def content(cls) -> Field:
        """The document's text (missing when it has none)."""
        return cls._of_document("content")

    @classmethod
    def _of_document(cls, document_field: DocumentField) -> Field:
        part = cls.__new__(cls)
        part.path, part._document_field = (), document_field
        return part

    def _c(self, op: str, value: Any) -> Condition:
        return Condition(self.path, _OPERATORS[op], value, self._document_field)

    def __eq__(self, value: object) -> Condition:  # type: ignore[override]
        return self._c("$eq", value)

    def __ne__(self, value: object) -> Condition:  # type: ignore[override]
        return self._c("$ne", value)

    def __gt__(self, value: Any) -> Condition:
        return self._c("$gt", value)

    def __ge__(self, value: Any) -> Condition:
        return self._c("$gte", value)

    def __lt__(self, value: Any) -> Condition:
        return self._c("$lt", value)

    def __le__(self, value: Any) -> Condition:
        return self._c("$lte", value)

    def is_in(self, values: Sequence[Any]) -> Condition:
        """The field equals one of ``values``."""
        return self._c("$in", list(values))

    def not_in(self, values: Sequence[Any]) -> Condition:
        """The field is missing or equals none of ``values``."""
        return self._c("$nin", list(values))

    def exists(self, flag: bool = True) -> Condition:
        """The field is present (or absent with ``flag=False``)."""
        return self._c("$exists", flag)

    def contains(self, value: Any) -> Condition:
        """The field is a list holding ``value`` or a string holding it as a substring."""
        return self._c("$contains", value)

    __hash__ = None  # type: ignore[assignment]


Filter: TypeAlias = Condition | And | Or | Not
FilterLike: TypeAlias = Filter | Mapping[str, Any] | document_pb2.Filter


def to_filter_pb(obj: FilterLike | None) -> document_pb2.Filter | None:
    """The protobuf filter of a typed filter, a dict, a Filter message, or None."""
    if obj is None:
        return None
    if isinstance(obj, document_pb2.Filter):
        return obj
    if isinstance(obj, Mapping):
        return _dict_pb(obj, "filter")
    return obj.to_pb()


def _required_pb(obj: FilterLike) -> document_pb2.Filter:
    result = to_filter_pb(obj)
    assert result is not None
    return result


def _not_pb(operand: document_pb2.Filter) -> document_pb2.Filter:
    node = document_pb2.Filter()
    getattr(node, "not").CopyFrom(operand)  # `not` is a Python keyword
    return node


def from_chroma_where(where: Mapping[str, Any]) -> document_pb2.Filter:
    """The filter of a Chroma ``where`` dict, so migrated apps keep their queries."""
    return _dict_pb(where, "where")


def _dict_pb(obj: Mapping[str, Any], where: str) -> document_pb2.Filter:
    parts: list[document_pb2.Filter] = []
    for key, value in obj.items():
        at = f"{where}[{key!r}]"
        if key in ("$and", "$or"):
            if not isinstance(value, list | tuple):
                raise ValueError(f"{at}: needs a list of filters")
            operands = [_dict_pb(v, f"{at}[{i}]") for i, v in enumerate(value)]
            node = document_pb2.FilterList(filters=operands)
            parts.append(document_pb2.Filter(all_of=node) if key == "$and" else document_pb2.Filter(any_of=node))
        elif key == "$not":
            if not isinstance(value, Mapping):
                raise ValueError(f"{at}: needs a filter")
            parts.append(_not_pb(_dict_pb(value, at)))
        elif key.startswith("$"):
            raise ValueError(f"{at}: unknown operator {key}")
        else:
            parts.extend(_field_pb(key, value, at))
    if len(parts) == 1:
        return parts[0]
    return document_pb2.Filter(all_of=document_pb2.FilterList(filters=parts))


def _field_pb(key: str, spec: Any, at: str) -> list[document_pb2.Filter]:
    if not isinstance(spec, Mapping):
        return [Condition((key,), document_pb2.OPERATOR_EQ, spec).to_pb()]
    conditions = []
    for op, value in spec.items():
        if op not in _OPERATORS:
            raise ValueError(f"{at}[{op!r}]: unknown operator {op}")
        if op in ("$in", "$nin") and not isinstance(value, list | tuple):
            raise ValueError(f"{at}[{op!r}]: needs a list")
        try:
            conditions.append(Condition((key,), _OPERATORS[op], value).to_pb())
        except ValueError as exc:
            raise ValueError(f"{at}[{op!r}]: {exc}") from None
    return conditions
