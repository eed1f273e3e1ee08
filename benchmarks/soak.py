"""Soak: concurrent clients mixing search, ingest and count for a fixed time (errors by code, p99,
server RSS at start / middle / end), then one long Ingest stream (server RSS before / during / after).

Goals (issue 9): no errors, and server RSS growing less than 10 % over the mixed run."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from pgvector_grpc import Client, Document, NoIndex, PgvectorGrpcError

from benchmarks.harness import SERVER_PIDS, percentiles, rss_mib, unit_vectors

DIM = 128
PRELOAD = 20_000
INGEST_BATCH = 20
MIX = (("search", 0.7), ("count", 0.15), ("ingest", 0.15))


@dataclass
class Tally:
    """What the clients saw: latencies by operation, failures by status code."""

    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: {op: [] for op, _ in MIX})
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, op: str, started: float, error: str | None) -> None:
        with self.lock:
            if error is None:
                self.latencies_ms[op].append((time.perf_counter() - started) * 1000)
            else:
                self.errors[error] += 1


def _client_loop(address: str, worker: int, until: float, tally: Tally) -> None:
    rng = random.Random(worker)
    queries = unit_vectors(64, DIM, seed=1000 + worker)
    ops = [op for op, _ in MIX]
    weights = [w for _, w in MIX]
    written = 0
    with Client(address, timeout=10) as client:
        while time.monotonic() < until:
            op = rng.choices(ops, weights)[0]
            started = time.perf_counter()
            try:
                if op == "search":
                    client.search("soak", queries[rng.randrange(len(queries))], top_k=10)
                elif op == "count":
                    client.count("soak", {"worker": worker % 8})
                else:
                    vectors = unit_vectors(INGEST_BATCH, DIM, seed=worker * 1_000_003 + written)
                    docs = [
                        Document(f"w{worker}-{written + i}", "soak", {"worker": worker % 8}, vectors[i])
                        for i in range(INGEST_BATCH)
                    ]
                    client.ingest("soak", docs, batch_size=INGEST_BATCH, timeout=10)
                    written += INGEST_BATCH
                tally.record(op, started, None)
            except PgvectorGrpcError as exc:
                tally.record(op, started, exc.code.name)


def mixed(address: str, clients: int, seconds: float) -> list[dict[str, object]]:
    """``clients`` threads, each with its own channel, for ``seconds``."""
    pid = SERVER_PIDS[address]
    with Client(address, timeout=600) as setup:
        setup.create_collection("soak", DIM)
        vectors = unit_vectors(PRELOAD, DIM, seed=1)
        setup.ingest("soak", (Document(f"pre-{i}", "x", {"worker": i % 8}, v) for i, v in enumerate(vectors)))
    tally = Tally()
    until = time.monotonic() + seconds
    threads = [threading.Thread(target=_client_loop, args=(address, w, until, tally)) for w in range(clients)]
    for t in threads:
        t.start()
    time.sleep(min(2.0, seconds / 10))  # warm: every client connected and the pool full
    rss_start = rss_mib(pid)
    time.sleep(max(0.0, until - time.monotonic()) / 2)
    rss_middle = rss_mib(pid)
    for t in threads:
        t.join()
    rss_end = rss_mib(pid)

    calls = sum(len(v) for v in tally.latencies_ms.values()) + sum(tally.errors.values())
    errors = ", ".join(f"{code} {n}" for code, n in sorted(tally.errors.items())) or "none"
    results: list[dict[str, object]] = [
        {
            "what": f"soak: {clients} clients x {seconds:.0f} s, {calls} calls",
            "ours": f"errors: {errors}",
            "reference": "goal: 0 errors",
            "ratio": float(sum(tally.errors.values())),
            "goal_at_most": 0.0,  # issue 9
        }
    ]
    for op, samples in tally.latencies_ms.items():
        p50, p99 = percentiles(samples) if samples else (float("nan"), float("nan"))
        results.append(
            {
                "what": f"soak: {op} ({len(samples)} ok)",
                "ours": f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
                "reference": "p99 / p50",
                "ratio": p99 / p50 if samples else float("nan"),
            }
        )
    results.append(
        {
            "what": "soak: server RSS start / middle / end",
            "ours": f"{rss_start:.0f} / {rss_middle:.0f} / {rss_end:.0f} MiB",
            "reference": "goal: end/start < 1.10",
            "ratio": rss_end / rss_start,
            "goal_at_most": 1.10,  # issue 9
        }
    )
    return results


def _stream(n: int, seed: int) -> Iterator[Document]:
    chunk = 10_000
    for start in range(0, n, chunk):
        vectors = unit_vectors(min(chunk, n - start), DIM, seed=seed + start)
        for i, v in enumerate(vectors):
            yield Document(f"bulk-{start + i:08d}", "x" * 100, {"chunk": start + i}, v)


def long_ingest(address: str, n: int) -> list[dict[str, object]]:
    """One Ingest stream of ``n`` documents (no vector index, so the stream is the bottleneck)."""
    pid = SERVER_PIDS[address]
    with Client(address, timeout=None) as client:
        client.create_collection("bulk", DIM, index=NoIndex())
        rss_before = rss_mib(pid)
        samples: list[float] = []
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.5):
                samples.append(rss_mib(pid))

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.perf_counter()
        try:
            summary = client.ingest("bulk", _stream(n, seed=7), batch_size=1000)
        finally:
            done.set()
            sampler.join()
        elapsed = time.perf_counter() - started
        time.sleep(1.0)
        rss_after = rss_mib(pid)
    assert summary.documents == n
    peak = max(samples, default=rss_before)
    median = float(np.median(samples)) if samples else peak
    return [
        {
            "what": f"ingest stream: {n} docs x {DIM} dims in {elapsed:.0f} s ({n / elapsed:,.0f}/s)",
            "ours": f"RSS {rss_before:.0f} / peak {peak:.0f} (median {median:.0f}) / {rss_after:.0f} MiB",
            "reference": "before / during / after",
            "ratio": rss_after / rss_before,
        }
    ]


def run(address: str, clients: int, seconds: float, ingest_docs: int) -> list[dict[str, object]]:
    return mixed(address, clients, seconds) + long_ingest(address, ingest_docs)
