"""An embedded PostgreSQL, the server in its own process, and timing helpers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from pgvector_grpc_server.embedded import EmbeddedPostgres

SERVER_PIDS: dict[str, int] = {}
"""The process id of each server `serving` runs, by address (for its memory)."""


def rss_mib(pid: int) -> float:
    """The resident memory of a process in MiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def environment() -> Iterator[tuple[str, str]]:
    """(conninfo, server address): a throwaway embedded PostgreSQL and the server serving it."""
    with tempfile.TemporaryDirectory() as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "pg")
        conninfo = postgres.start()
        try:
            with serving(conninfo) as address:
                yield conninfo, address
        finally:
            postgres.stop()


@contextmanager
def serving(admin_conninfo: str, *extra: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`pgvector-grpc serve` (with ``extra`` arguments and ``env`` added to the environment) in its
    own process on the database of ``admin_conninfo``; its address.

    The server applies sql/ with the admin's URL and opens its pool as pgvector_grpc_app."""
    address = f"127.0.0.1:{free_port()}"
    bin_dir = Path(sys.executable).parent
    server = subprocess.Popen(
        [
            str(bin_dir / "pgvector-grpc"),
            "serve",
            "--listen",
            address,
            "--admin-database-url",
            admin_conninfo,
            "--log-level",
            "WARNING",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(
            [str(bin_dir / "pgvector-grpc"), "health", "--address", address], capture_output=True
        ).returncode:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("server did not start")
            time.sleep(0.2)
        SERVER_PIDS[address] = server.pid
        yield address
    finally:
        SERVER_PIDS.pop(address, None)
        server.terminate()
        server.wait(30)


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    """(p50, p99) of latencies in milliseconds."""
    return float(np.percentile(samples_ms, 50)), float(np.percentile(samples_ms, 99))


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def clustered(n: int, dim: int, seed: int, centres: int = 100) -> np.ndarray:
    """A Gaussian mixture of unit centres with Zipf-like sizes, normalised (perf-anchors' search data)."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, dim))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    weights = 1 / np.sqrt(np.arange(1, centres + 1))
    pick = rng.choice(centres, size=n, p=weights / weights.sum())
    points: np.ndarray = c[pick] + rng.normal(size=(n, dim)) / np.sqrt(dim)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points.astype(np.float32)
