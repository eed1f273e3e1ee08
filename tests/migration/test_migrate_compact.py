"""Migrate into a collection with a compact (bit) index: the index is built after the copy, the
verification passes, and searches find each document as the nearest to itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pgvector_grpc import Client, HnswIndex
from pgvector_grpc_common.migration.events import Report

from tests.migration.chroma_stores import write_store


def test_migrate_builds_a_compact_index_and_verifies(client: Client, tmp_path_factory: pytest.TempPathFactory) -> None:
    path: Path = tmp_path_factory.mktemp("chroma") / "store"
    written = write_store(path, {"bits": ("cosine", 64, 600)})["bits"]
    events = list(client.migrate(str(path), "bits", target="m_bits", index=HnswIndex(storage="bit", rerank_factor=12)))
    report = events[-1]
    assert isinstance(report, Report) and report.ok, report
    assert report.target_count == 600
    assert client.get_collection("m_bits").index == HnswIndex(16, 64, "bit", 12)
    for i in (7, 300, 599):
        hits = client.search("m_bits", written.embeddings[i], top_k=5)
        assert hits[0].id == written.ids[i] and np.isclose(hits[0].distance, 0, atol=1e-6)
        assert [h.distance for h in hits] == sorted(h.distance for h in hits) and not hits.exhaustive
