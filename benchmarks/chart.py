"""The ratios of a `make bench` run as a bar chart (PNG), one bar per measurement.

A result may carry the goal its issue set for the ratio: ``goal_at_least`` (e.g. Ingest ≥ 0.8x raw
COPY) or ``goal_at_most`` (e.g. multi-tenant Search ≤ 1.10x single-tenant). The goal is drawn as a
mark across its bar, and the bar is green when the ratio meets it, orange when it does not, grey
when no goal was set. A dotted line marks parity (1.0)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display needed (or wanted) on a benchmark machine

import matplotlib.pyplot as plt  # after use("Agg"): the backend is chosen before pyplot loads
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

MET, MISSED, NO_GOAL = "#2e7d32", "#ef6c00", "#9e9e9e"
GOAL_MARK = "#c62828"
_INCHES_PER_BAR = 0.32


def goal_of(result: Mapping[str, Any]) -> tuple[str, float] | None:
    """(">=" or "<=", value) when the result names a goal."""
    if "goal_at_least" in result:
        return ">=", float(result["goal_at_least"])
    if "goal_at_most" in result:
        return "<=", float(result["goal_at_most"])
    return None


def meets_goal(result: Mapping[str, Any]) -> bool | None:
    """Whether the ratio meets its goal; None without a goal or without a ratio."""
    goal, ratio = goal_of(result), float(result["ratio"])
    if goal is None or not math.isfinite(ratio):
        return None
    direction, value = goal
    return ratio >= value if direction == ">=" else ratio <= value


def write_chart(results: Sequence[Mapping[str, Any]], path: Path, title: str = "make bench: ratios") -> Path:
    """Draw ``results`` (dicts with ``what`` and ``ratio``) into a PNG at ``path``; the path."""
    if not results:
        raise ValueError("no results to draw")
    labels = [str(r["what"]).strip() for r in results]
    ratios = [float(r["ratio"]) for r in results]
    drawn = [v if math.isfinite(v) else 0.0 for v in ratios]
    colours = [{True: MET, False: MISSED, None: NO_GOAL}[meets_goal(r)] for r in results]
    goals = [goal_of(r) for r in results]
    reach = max([*drawn, *(g[1] for g in goals if g is not None), 1.0])

    figure, axes = plt.subplots(figsize=(11, 1.6 + _INCHES_PER_BAR * len(results)), layout="constrained")
    rows = list(range(len(results)))
    axes.barh(rows, drawn, color=colours, height=0.7)
    axes.axvline(1.0, color="black", linestyle=":", linewidth=1)
    for row, (ratio, goal) in enumerate(zip(ratios, goals, strict=True)):
        text = f"{ratio:.2f}" if math.isfinite(ratio) else "n/a"
        if goal is not None:
            axes.vlines(goal[1], row - 0.45, row + 0.45, color=GOAL_MARK, linewidth=2.5)
            text += f"  (goal {'≥' if goal[0] == '>=' else '≤'} {goal[1]:g})"
        axes.text(drawn[row] + reach * 0.01, row, text, va="center", fontsize=8)
    axes.set_yticks(rows, labels, fontsize=8)
    axes.invert_yaxis()  # the first result on top, as in the table
    axes.set_xlim(0, reach * 1.3)
    axes.set_xlabel("ratio: ours / reference (see the table for what each compares)")
    axes.set_title(title)
    legend = [
        Rectangle((0, 0), 1, 1, color=MET, label="meets its goal"),
        Rectangle((0, 0), 1, 1, color=MISSED, label="misses its goal"),
        Rectangle((0, 0), 1, 1, color=NO_GOAL, label="no goal set"),
        Line2D([0], [0], color=GOAL_MARK, linewidth=2.5, label="goal"),
        Line2D([0], [0], color="black", linestyle=":", label="parity (1.0)"),
    ]
    axes.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # never over a bar
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
