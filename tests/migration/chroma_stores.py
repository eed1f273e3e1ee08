"""Real Chroma stores for the migration tests, written with chromadb's own client and explicit embeddings."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
from chromadb.config import Settings
from pgvector_grpc_common.migration.sources.chroma import release_client

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "chroma"


@dataclass
class Written:
    """Exactly what a test wrote into one Chroma collection."""

    space: str
    ids: list[str]
    documents: list[str | None]
    metadatas: list[dict[str, Any] | None]
    embeddings: np.ndarray[Any, np.dtype[np.float32]]


def metadata_of(i: int) -> dict[str, Any] | None:
    """Every Chroma metadata value type, including the lists chromadb 1.x allows."""
    if i % 13 == 0:
        return None
    meta: dict[str, Any] = {"n": i, "ratio": i / 4, "flag": i % 2 == 0, "name": f"naïve-{i}", "whole": 3.0}
    if i % 3 == 0:
        meta["tags"] = ["a", f"t{i % 5}"]
        meta["nums"] = [i, i + 1]
    return meta


def write_store(path: Path, collections: dict[str, tuple[str, int, int]], seed: int = 1) -> dict[str, Written]:
    """Create ``name -> (space, dimension, count)`` collections in a persistent directory."""
    client = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
    rng = np.random.default_rng(seed)
    written = {}
    for name, (space, dim, count) in collections.items():
        collection = client.create_collection(name, configuration={"hnsw": {"space": space, "max_neighbors": 24}})
        ids = [f"{name}/doc-{i:05d}" for i in range(count)]
        ids[0] = "ключ-🙂-" + name
        ids[1] = "long-" + "ü" * 400
        embeddings = rng.standard_normal((count, dim)).astype(np.float32)
        documents = [None if i % 5 == 2 else f"text {i} «{name}»" for i in range(count)]
        metadatas = [metadata_of(i) for i in range(count)]
        for start in range(0, count, 500):
            end = start + 500
            collection.add(
                ids=ids[start:end],
                embeddings=embeddings[start:end],
                documents=documents[start:end],
                metadatas=metadatas[start:end],
            )
        written[name] = Written(space, ids, documents, metadatas, embeddings)
    release_client(client)
    return written


def tree_digest(path: Path) -> str:
    """A digest of every file's name, size and bytes: proof that a directory was not touched."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def fixture_expected(version: str) -> dict[str, Any]:
    """What scripts/make_chroma_fixtures.py wrote with that Chroma release."""
    data: dict[str, Any] = json.loads((FIXTURES / version / "expected.json").read_text(encoding="utf-8"))
    return data
