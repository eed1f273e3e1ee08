"""Readable tables for command lines: the client's verbs and the server's `keys` print alike."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO


def shorten(value: Any, width: int = 60) -> str:
    """A cell: strings as they are, other values as JSON, cut to ``width`` with an ellipsis."""
    text = "" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def write_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO = sys.stdout) -> None:
    """Columns aligned to their widest cell; numeric columns right-aligned."""
    numeric = [bool(rows) and all(_is_number(row[i]) for row in rows) for i in range(len(headers))]
    cells = [[_number(c) if _is_number(c) else shorten(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if right else v.ljust(w) for v, w, right in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out.write(line([h.upper() for h in headers]) + "\n")
    for row in cells:
        out.write(line(row) + "\n")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.4f}"
