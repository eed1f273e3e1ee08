"""Verification: counts, every id, a sample compared field by field, exact top-10 queries.

One pass over the source's ids and embeddings checks that every id is in the target, draws the
sample (reservoir sampling) and computes the exact top-10 of the sample queries in numpy; the
target answers the same queries with an exact scan. Embeddings must be equal as float32: both
sides hold the float32 values Chroma returns."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pgvector_grpc_common.migration.events import Metric, Progress, Report

if TYPE_CHECKING:
    from pgvector_grpc_common.migration.engine import Target, TargetDocument
    from pgvector_grpc_common.migration.sources.chroma import ChromaCollection

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

    def add(self, ids: Sequence[str], vectors: Matrix) -> None:
        if not len(self.queries) or not len(ids):
            return
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


def compare(doc_id: str, content: str | None, metadata: str, embedding: Matrix, got: TargetDocument) -> list[str]:
    """What differs between a source document and its stored copy."""
    problems = []
    if content != got.content:
        problems.append(f"{doc_id!r}: content {_short(got.content)} != source {_short(content)}")
    if not same_json(json.loads(metadata), json.loads(got.metadata_json or "{}")):
        problems.append(f"{doc_id!r}: metadata {_short(got.metadata_json)} != source {_short(metadata)}")
    if got.embedding is None or got.embedding.shape != embedding.shape:
        problems.append(f"{doc_id!r}: embedding missing or of another dimension")
    elif not np.array_equal(got.embedding, embedding):
        differ = int(np.count_nonzero(got.embedding != embedding))
        problems.append(f"{doc_id!r}: embedding differs in {differ} of {embedding.shape[0]} values")
    return problems


def _ties(ours: list[tuple[str, float]], exact: list[tuple[float, str]]) -> bool:
    """Same top-k, or different ids at equal distances (ties broken differently)."""
    if [i for i, _ in ours] == [i for _, i in exact] or {i for i, _ in ours} == {i for _, i in exact}:
        return True
    if len(ours) != len(exact):
        return False
    return all(abs(d - e) <= 1e-5 * (1 + abs(e)) for (_, d), (e, _) in zip(ours, exact, strict=True))


async def verify(
    source: ChromaCollection, target: Target, name: str, metric: Metric, sample_size: int, batch_size: int
) -> AsyncIterator[Progress | Report]:
    """Compare the target with the source; yields progress, then the report."""
    report = Report(await asyncio.to_thread(source.count), await target.count(name))
    total = report.source_count
    rng = random.Random(f"{name}:{total}")  # repeatable: the same run checks the same sample
    query_offsets = rng.sample(range(total), min(MAX_QUERIES, sample_size, total))
    queries = [(await asyncio.to_thread(source.page, offset, 1)).embeddings[0] for offset in query_offsets]
    top = _TopK(np.array(queries, dtype=np.float32), metric)
    sample: list[str] = []
    offset, began = 0, time.monotonic()
    yield Progress("verifying", 0, total)
    while True:
        ids, vectors = await asyncio.to_thread(source.ids_and_embeddings, offset, batch_size)
        if not ids:
            break
        present = await target.fetch(name, ids, fields=False)
        for doc_id in ids:
            if doc_id not in present:
                report.missing_count += 1
                if len(report.missing_ids) < MAX_LISTED:
                    report.missing_ids.append(doc_id)
        top.add(ids, vectors)
        for seen, doc_id in enumerate(ids, start=offset):  # reservoir sampling
            if len(sample) < sample_size:
                sample.append(doc_id)
            elif (slot := rng.randrange(seen + 1)) < sample_size:
                sample[slot] = doc_id
        offset += len(ids)
        rate = offset / max(time.monotonic() - began, 1e-9)
        yield Progress("verifying", offset, max(total, offset), rate, max(total - offset, 0) / rate)
        if len(ids) < batch_size:
            break

    if sample:
        page = await asyncio.to_thread(source.get, sample)
        stored = await target.fetch(name, page.ids, fields=True)
        report.sampled = len(page.ids)
        for i, doc_id in enumerate(page.ids):
            if doc_id in stored:
                report.mismatches.extend(
                    compare(doc_id, page.contents[i], page.metadata_json[i], page.embeddings[i], stored[doc_id])
                )
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
    yield Progress("done", offset, total)
    yield report
