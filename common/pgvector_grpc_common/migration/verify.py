"""Verification: counts, every id, documents compared field by field, exact top-10 queries.

One pass over the source's ids and embeddings checks that every id is in the target, draws the
sample (reservoir sampling) and computes the exact top-10 of the sample queries in numpy; the
target answers the same queries with an exact scan. With ``every_document`` the pass reads whole
documents and compares each one instead (the queries would then add nothing). Embeddings must be
equal in their most precise form: float64 where a side kept the caller's exact values, else
float32. When the target holds more documents than that pass found there, a pass over the
target's ids finds those the source does not hold (extra ids)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import numpy as np

from pgvector_grpc_common.migration.events import Progress, Report
from pgvector_grpc_common.migration.options import MigrationOptions
from pgvector_grpc_common.migration.protocols import Cursor, Page, Source, Target
from pgvector_grpc_common.vocabulary import DocumentRecord, Metric

TOP_K = 10
MAX_QUERIES = 10
MAX_LISTED = 100
Matrix = np.ndarray[Any, np.dtype[np.float32]]


def distances(metric: Metric, queries: Matrix, vectors: Matrix) -> np.ndarray[Any, np.dtype[np.float64]]:
    """pgvector's distance of every vector to every query (a queries-by-vectors matrix), in float64."""
    q, v = queries.astype(np.float64), vectors.astype(np.float64)
    dots: np.ndarray[Any, np.dtype[np.float64]] = q @ v.T
    if metric == "inner_product":
        return -dots
    if metric == "cosine":
        norms: np.ndarray[Any, np.dtype[np.float64]] = np.outer(np.linalg.norm(q, axis=1), np.linalg.norm(v, axis=1))
        with np.errstate(divide="ignore", invalid="ignore"):
            cosine: np.ndarray[Any, np.dtype[np.float64]] = 1.0 - dots / norms
        return cosine
    squared: np.ndarray[Any, np.dtype[np.float64]] = (q * q).sum(1)[:, None] + (v * v).sum(1)[None, :] - 2 * dots
    euclidean: np.ndarray[Any, np.dtype[np.float64]] = np.sqrt(np.maximum(squared, 0.0))
    return euclidean


class _TopK:
    """The running exact top-k of several queries over a stream of vectors."""

    def __init__(self, queries: Matrix, metric: Metric) -> None:
        self.queries, self.metric = queries, metric
        self.best: list[list[tuple[float, str]]] = [[] for _ in range(len(queries))]

    def add(self, page: Page) -> None:
        with_vectors = [r for r in page.records if r.embedding is not None]
        if not len(self.queries) or not with_vectors:
            return
        ids = [r.id for r in with_vectors]
        vectors: Matrix = np.stack([r.embedding for r in with_vectors if r.embedding is not None])
        dist = distances(self.metric, self.queries, vectors)
        for row, best in zip(dist, self.best, strict=True):
            nearest = np.argsort(row, kind="stable")[:TOP_K]
            best.extend((float(row[i]), ids[i]) for i in nearest)
            best.sort()
            del best[TOP_K:]


def same_json(a: Any, b: Any) -> bool:
    """Equal JSON values with equal types: 1, 1.0 and true are three different values."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def precise_embedding(record: DocumentRecord) -> np.ndarray[Any, np.dtype[np.float64]] | None:
    """The most precise values a record holds: its exact float64 values, else its float32 ones."""
    if record.embedding_exact is not None:
        return np.frombuffer(record.embedding_exact, dtype="<f8").astype(np.float64)
    return None if record.embedding is None else record.embedding.astype(np.float64)


def compare(expected: DocumentRecord, got: DocumentRecord) -> list[str]:
    """What differs between a source document and its stored copy."""
    doc_id = expected.id
    problems = []
    if expected.content != got.content:
        problems.append(f"{doc_id!r}: content {_short(got.content)} != source {_short(expected.content)}")
    if not same_json(json.loads(expected.metadata_json), json.loads(got.metadata_json or "{}")):
        problems.append(f"{doc_id!r}: metadata {_short(got.metadata_json)} != source {_short(expected.metadata_json)}")
    want, have = precise_embedding(expected), precise_embedding(got)
    if want is None and have is None:
        return problems
    if want is None or have is None or want.shape != have.shape:
        problems.append(f"{doc_id!r}: embedding missing or of another dimension")
    elif not np.array_equal(want, have):
        differ = int(np.count_nonzero(want != have))
        problems.append(f"{doc_id!r}: embedding differs in {differ} of {want.shape[0]} values")
    return problems


def _ties(ours: list[tuple[str, float]], exact: list[tuple[float, str]]) -> bool:
    """Same top-k, or different ids at equal distances (ties broken differently)."""
    if [i for i, _ in ours] == [i for _, i in exact] or {i for i, _ in ours} == {i for _, i in exact}:
        return True
    if len(ours) != len(exact):
        return False
    return all(abs(d - e) <= 1e-5 * (1 + abs(e)) for (_, d), (e, _) in zip(ours, exact, strict=True))


async def verify(
    source: Source, target: Target, name: str, metric: Metric, options: MigrationOptions
) -> AsyncGenerator[Progress | Report, None]:
    """Compare the target with the source as ``options.verification`` asks; yields progress, then the report."""
    report = Report(await asyncio.to_thread(source.count), await target.count(name))
    total = report.source_count
    if options.verification == "counts_only":
        yield Progress("done", total, total)
        yield report
        return
    every_document = options.verification == "every_document"
    sample_size = 0 if every_document else options.verify_sample_size
    rng = random.Random(f"{name}:{total}")  # repeatable: the same run checks the same sample
    query_offsets = rng.sample(range(total), min(MAX_QUERIES, sample_size, total))
    queries = [q for offset in query_offsets if (q := await asyncio.to_thread(source.embedding_at, offset)) is not None]
    top = _TopK(np.array(queries, dtype=np.float32), metric)
    sample: list[str] = []
    cursor, began = Cursor(), time.monotonic()
    yield Progress("verifying", 0, total)
    while True:
        page = await asyncio.to_thread(source.page, cursor, options.batch_size, every_document)
        if not page.records:
            break
        present = await target.fetch(name, page.ids, fields=every_document)
        _count_missing(report, page, present)
        if every_document:
            _compare_all(report, page.records, present)
        else:
            top.add(page)
            for seen, doc_id in enumerate(page.ids, start=page.offset):  # reservoir sampling
                if len(sample) < sample_size:
                    sample.append(doc_id)
                elif (slot := rng.randrange(seen + 1)) < sample_size:
                    sample[slot] = doc_id
        cursor = page.end()
        rate = cursor.offset / max(time.monotonic() - began, 1e-9)
        yield Progress(
            "verifying", cursor.offset, max(total, cursor.offset), rate, max(total - cursor.offset, 0) / rate
        )
        if len(page.records) < options.batch_size:
            break

    if report.target_count > cursor.offset - report.missing_count:
        await _count_extra(report, source, target, name, options.batch_size)
    if sample:
        records = await asyncio.to_thread(source.get, sample)
        _compare_all(report, records, await target.fetch(name, [r.id for r in records], fields=True))
    for query, exact in zip(queries, top.best, strict=True):
        ours = await target.nearest(name, query, TOP_K)
        report.queries_compared += 1
        if _ties(ours, exact):
            report.queries_matching += 1
        elif len(report.mismatches) < MAX_LISTED:
            report.mismatches.append(
                f"query top-{TOP_K} differs: {[i for i, _ in ours]} != source {[i for _, i in exact]}"
            )
    del report.mismatches[MAX_LISTED:]
    yield Progress("done", cursor.offset, total)
    yield report


async def target_only_ids(
    source: Source, target: Target, name: str, page_size: int
) -> AsyncIterator[tuple[int, list[str]]]:
    """Over the target's ids page by page: (ids checked so far, those of the page the source does
    not hold). One page of ids is held at a time, whatever the size of either side."""
    checked = 0
    async for ids in target.ids(name, page_size):
        held = await asyncio.to_thread(source.present, ids)
        checked += len(ids)
        yield checked, [doc_id for doc_id in ids if doc_id not in held]


async def _count_extra(report: Report, source: Source, target: Target, name: str, page_size: int) -> None:
    async for _, extra in target_only_ids(source, target, name, page_size):
        report.extra_count += len(extra)
        report.extra_ids.extend(extra[: max(MAX_LISTED - len(report.extra_ids), 0)])


def _count_missing(report: Report, page: Page, present: dict[str, DocumentRecord]) -> None:
    for doc_id in page.ids:
        if doc_id not in present:
            report.missing_count += 1
            if len(report.missing_ids) < MAX_LISTED:
                report.missing_ids.append(doc_id)


def _compare_all(report: Report, records: list[DocumentRecord], stored: dict[str, DocumentRecord]) -> None:
    """Compare source records with their stored copies (a missing copy is counted by the id check)."""
    report.sampled += len(records)
    for record in records:
        if record.id in stored and (problems := compare(record, stored[record.id])):
            report.differing_count += 1
            report.mismatches.extend(problems[: max(MAX_LISTED - len(report.mismatches), 0)])
