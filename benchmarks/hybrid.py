"""Hybrid search: recall of documents holding a query's rare exact term, hybrid vs vector-only, and the
latency of both (goals: hybrid finds >= 95% of them; hybrid p50 <= 2x vector-only p50).

Data, built here: a product catalogue. Each document is a category's words (Zipf-weighted) and a
few general ones; about a third also carry a product code (``qx4821k``-style), each code held by 1-4
documents of one category. Embeddings come from a deterministic hashing embedder (numpy alone): every
token is a fixed random direction seeded by its hash, a text is the normalised sum of its tokens'.

A query asks about one code in its category's words: "seal pump bracket qx4821k". Vector-only search
embeds the whole question; hybrid search adds the code as query_text, as a user typing it into a
search box would. Both run on the same collection (HNSW, full-text index "simple"), each query on
both sides in turn. Also: ingest with the full-text index vs without, vector index deferred (the
generated column and its GIN entries are written with every row). Only the ratios carry.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import numpy as np
from pgvector_grpc import Client, Document, SearchResults

from benchmarks.harness import percentiles

T = TypeVar("T")

TOP_K = 10
CATEGORIES = 50
WORDS_PER_CATEGORY = 40
SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "pe", "da", "gu", "ze", "fo", "bi", "ha", "ju")


class HashingEmbedder:
    """A deterministic bag-of-words embedder: token -> a fixed random unit direction (seeded by the
    token's BLAKE2 hash), text -> the normalised sum over its tokens."""

    def __init__(self, dim: int) -> None:
        self._dim = dim
        self._cache: dict[str, np.ndarray] = {}

    def token(self, word: str) -> np.ndarray:
        vector = self._cache.get(word)
        if vector is None:
            seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
            vector = np.random.default_rng(seed).standard_normal(self._dim)
            self._cache[word] = vector
        return vector

    def __call__(self, text: str) -> np.ndarray:
        total: np.ndarray = np.sum([self.token(word) for word in text.split()], axis=0)
        total /= np.linalg.norm(total)
        return total.astype(np.float32)


def _word(rng: np.random.Generator) -> str:
    return "".join(rng.choice(SYLLABLES, size=int(rng.integers(2, 4))))


def catalogue(n: int, seed: int = 7) -> tuple[list[str], dict[str, list[int]], list[int]]:
    """(texts, the documents holding each code, each document's category)."""
    rng = np.random.default_rng(seed)
    vocabulary = sorted({_word(rng) for _ in range(CATEGORIES * WORDS_PER_CATEGORY * 3)})
    rng.shuffle(vocabulary)
    words = [vocabulary[c * WORDS_PER_CATEGORY : (c + 1) * WORDS_PER_CATEGORY] for c in range(CATEGORIES)]
    general = vocabulary[CATEGORIES * WORDS_PER_CATEGORY :]
    zipf = 1 / np.arange(1, WORDS_PER_CATEGORY + 1)
    zipf /= zipf.sum()
    categories = [int(c) for c in rng.integers(0, CATEGORIES, n)]
    texts = []
    for c in categories:
        own = rng.choice(words[c], size=int(rng.integers(8, 14)), p=zipf)
        texts.append(" ".join([*own, *rng.choice(general, size=3)]))
    holders: dict[str, list[int]] = {}
    by_category: dict[int, list[int]] = {}
    for i, c in enumerate(categories):
        by_category.setdefault(c, []).append(i)
    coded = rng.permutation(n)[: n // 3]
    taken: set[int] = set()
    for first in coded:
        if first in taken:
            continue
        code = f"qx{rng.integers(1000, 9999)}{chr(97 + int(rng.integers(0, 26)))}"
        if code in holders:
            continue
        peers = [i for i in rng.choice(by_category[categories[first]], size=3) if i not in taken]
        members = sorted({int(first), *(int(i) for i in peers[: int(rng.integers(0, 4))])})
        holders[code] = members
        taken.update(members)
        for i in members:
            texts[i] += f" {code}"
    return texts, holders, categories


def queries(
    texts: list[str], holders: dict[str, list[int]], categories: list[int], count: int, seed: int = 11
) -> list[tuple[str, str, set[str]]]:
    """(question, its code, the ids holding the code): three words of the code's category, then the code."""
    rng = np.random.default_rng(seed)
    codes = sorted(holders)
    picked = rng.choice(len(codes), size=min(count, len(codes)), replace=False)
    out = []
    for index in picked:
        code = codes[int(index)]
        first = holders[code][0]
        context = [w for w in texts[first].split() if not w.startswith("qx")]
        words = rng.choice(context, size=3, replace=False)
        out.append((" ".join([*words, code]), code, {f"p{i:06d}" for i in holders[code]}))
    return out


def _timed(samples: list[float], call: Callable[[], T]) -> T:
    t = time.perf_counter()
    result = call()
    samples.append((time.perf_counter() - t) * 1000)
    return result


def _ingest_seconds(client: Client, name: str, documents: list[Document], dim: int, text_search: str | None) -> float:
    """Seconds to ingest ``documents`` into a new collection, its vector index deferred (so that the
    difference is the full-text index's: the generated tsvector and its GIN entries)."""
    client.create_collection(name, dim, text_search=text_search, defer_index=True)
    t = time.perf_counter()
    client.ingest(name, documents, batch_size=1000)
    return time.perf_counter() - t


def run(address: str, n: int, dim: int, queries_n: int) -> list[dict[str, object]]:
    embed = HashingEmbedder(dim)
    texts, holders, categories = catalogue(n)
    documents = [Document(f"p{i:06d}", text, {"category": categories[i]}, embed(text)) for i, text in enumerate(texts)]
    asked = queries(texts, holders, categories, queries_n)
    with Client(address, timeout=600) as client:
        text_s = _ingest_seconds(client, "bench_hybrid", documents, dim, "simple")  # first: it pays any warm-up
        plain_s = _ingest_seconds(client, "bench_plain", documents, dim, None)
        client.delete_collection("bench_plain")
        client.build_index("bench_hybrid")
        for question, code, _ in asked[:30]:  # warm both paths
            vector = embed(question)
            client.search("bench_hybrid", vector, top_k=TOP_K)
            client.search("bench_hybrid", vector, query_text=code, top_k=TOP_K)
        vector_ms: list[float] = []
        hybrid_ms: list[float] = []
        found = {"vector": 0, "hybrid": 0}
        relevant = 0
        for qi, (question, code, holding) in enumerate(asked):
            vector = embed(question)
            sides: list[tuple[str, list[float], Callable[[], SearchResults]]] = [
                ("vector", vector_ms, partial(client.search, "bench_hybrid", vector, top_k=TOP_K)),
                ("hybrid", hybrid_ms, partial(client.search, "bench_hybrid", vector, query_text=code, top_k=TOP_K)),
            ]
            if qi % 2:  # each side goes first every other query
                sides.reverse()
            for side, samples, call in sides:
                hits = _timed(samples, call)
                found[side] += len({h.id for h in hits} & holding)
            relevant += len(holding)
        client.delete_collection("bench_hybrid")
    (v50, v99), (h50, h99) = percentiles(vector_ms), percentiles(hybrid_ms)
    recall = {side: count / relevant for side, count in found.items()}
    n_q = len(asked)
    return [
        {
            "what": f"hybrid: recall of the rare term's documents, k={TOP_K}",
            "ours": f"{recall['hybrid']:.3f} ({found['hybrid']}/{relevant}, {n_q} queries)",
            "reference": f"{recall['vector']:.3f} vector-only",
            "ratio": recall["hybrid"] / recall["vector"] if recall["vector"] else float("inf"),
        },
        {
            "what": "hybrid Search p50 vs vector-only p50",
            "ours": f"{h50:.2f} ms (p99 {h99:.2f})",
            "reference": f"{v50:.2f} ms (p99 {v99:.2f})",
            "ratio": h50 / v50,
            "goal_at_most": 2.0,  # issue 13
        },
        {
            "what": f"ingest {n:,} x {dim} with full-text index vs without",
            "ours": f"{n / text_s:,.0f} docs/s",
            "reference": f"{n / plain_s:,.0f} docs/s",
            "ratio": plain_s / text_s,
        },
    ]
