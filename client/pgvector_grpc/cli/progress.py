"""How ``migrate`` shows a migration: the source summary, a progress line and the report."""

from __future__ import annotations

import time
from typing import TextIO

from pgvector_grpc_common.migration.events import Progress, Report, SourceSummary
from pgvector_grpc_common.vocabulary import HnswIndex


class ProgressView:
    """A one-line progress bar on a terminal, or a line every few seconds in a log."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._tty = out.isatty()
        self._last = 0.0
        self._phase = ""

    def show(self, collection: str, p: Progress) -> None:
        now = time.monotonic()
        if not self._tty and p.phase == self._phase and now - self._last < 2.0 and p.done < p.total:
            return
        self._last, self._phase = now, p.phase
        width = 30
        filled = int(width * p.done / p.total) if p.total else width
        eta = f" ETA {p.eta_seconds:,.0f}s" if p.rate and p.done < p.total else ""
        resumed = f" (resumed at {p.resumed_from:,})" if p.resumed_from else ""
        line = (
            f"{collection} {p.phase:<9} [{'#' * filled}{'.' * (width - filled)}] "
            f"{p.done:,}/{p.total:,} {p.rate:,.0f}/s{eta}{resumed}"
        )
        if self._tty:
            self._out.write("\r" + line.ljust(100))
            if p.phase == "done":
                self._out.write("\n")
        else:
            self._out.write(line + "\n")
        self._out.flush()


def describe(summary: SourceSummary) -> str:
    """The dry-run / first lines about a source."""
    index: str = summary.index.type
    if isinstance(summary.index, HnswIndex):
        index += f" (m={summary.index.m}, ef_construction={summary.index.ef_construction})"
    return (
        f"{summary.collection}: {summary.count:,} documents, dimension {summary.dimension}, metric {summary.metric}\n"
        f"  metadata keys: {', '.join(summary.metadata_keys) or '(none)'}\n"
        f"  target: {summary.target} ({'exists' if summary.target_exists else 'will be created'}), index {index}"
    )


def render(report: Report) -> str:
    """The final report."""
    lines = [
        f"  verification: {'OK' if report.ok else 'FAILED'}",
        f"  documents: source {report.source_count:,}, target {report.target_count:,}, "
        f"missing {report.missing_count:,}",
        f"  sampled {report.sampled:,} documents field by field; "
        f"{report.queries_matching}/{report.queries_compared} exact top-10 queries match",
    ]
    lines += [f"  missing: {doc_id!r}" for doc_id in report.missing_ids[:20]]
    lines += [f"  differs: {m}" for m in report.mismatches[:20]]
    lines += reconciliation(report.extra_count, report.extra_ids, report.deleted_count)
    return "\n".join(lines)


EXAMPLES = 3


def reconciliation(extra_count: int, extra_ids: list[str], deleted_count: int) -> list[str]:
    """The report's lines about target documents the source does not hold: deleted, or how to."""
    lines = []
    if deleted_count:
        lines.append(f"  deleted {deleted_count:,} target documents that are not in the source (--mirror)")
    if extra_count:
        shown = extra_ids[:EXAMPLES]
        examples = ", ".join(repr(doc_id) for doc_id in shown)
        more = ", …" if extra_count > len(shown) else ""
        lines.append(
            f"  {extra_count:,} documents in the target are not in the source (e.g. {examples}{more}); "
            "re-run with --mirror to delete them"
        )
    return lines
