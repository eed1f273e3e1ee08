"""The Migrate RPC against real Chroma stores: exact mapping, old Chroma releases, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pgvector_grpc import (
    Client,
    FailedPreconditionError,
    HnswIndex,
    InvalidArgumentError,
    NotFoundError,
)
from pgvector_grpc_common.migration.events import Progress, Report, SourceSummary

from tests.migration.chroma_stores import FIXTURES, Written, fixture_expected, tree_digest, write_store

STORE = {"cosine_docs": ("cosine", 16, 2000), "l2_docs": ("l2", 8, 1500), "ip_docs": ("ip", 4, 700)}
METRICS = {"cosine": "cosine", "l2": "l2", "ip": "inner_product"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Written]]:
    path = tmp_path_factory.mktemp("chroma") / "store"
    return path, write_store(path, STORE)


def run(client: Client, source: str | Path, collection: str, **options: Any) -> tuple[list[Any], Report | None]:
    events = list(client.migrate(str(source), collection, **options))
    reports = [e for e in events if isinstance(e, Report)]
    return events, reports[-1] if reports else None


# Chroma itself hands back cosine embeddings up to 2 float32 ULPs away from what was written
# (measured here: 26% of the values of a 16-d store); l2 and ip ones come back exact. The engine's
# own verification compares with what Chroma returns, exactly.
CHROMA_ULPS = {"cosine": 2, "l2": 0, "ip": 0}


def assert_same_documents(
    client: Client,
    target: str,
    ids: list[str],
    documents: list[Any],
    metadatas: list[Any],
    embeddings: np.ndarray,
    ulps: int,
) -> None:
    """Every document is stored exactly: ids verbatim, missing text stays missing, metadata types kept,
    embeddings within Chroma's own rounding of what was written."""
    assert client.count(target) == len(ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        got = {d.id: d for d in client.get(target, chunk, include_embedding=True)}
        assert set(got) == set(chunk)
        for offset, doc_id in enumerate(chunk, start=start):
            doc = got[doc_id]
            assert doc.content == documents[offset], doc_id
            expected_meta = metadatas[offset] or {}
            assert json.dumps(doc.metadata, sort_keys=True) == json.dumps(expected_meta, sort_keys=True), doc_id
            assert {k: type(v) for k, v in doc.metadata.items()} == {k: type(v) for k, v in expected_meta.items()}
            written = np.asarray(embeddings[offset], dtype=np.float32)
            assert doc.embedding is not None
            tolerance = ulps * np.spacing(np.abs(written))
            assert np.all(np.abs(doc.embedding - written) <= tolerance), doc_id


def test_every_field_round_trips_with_its_metric(client: Client, store: tuple[Path, dict[str, Written]]) -> None:
    path, written = store
    before = tree_digest(path)
    for name, data in written.items():
        events, report = run(client, path, name, target=f"m_{name}")
        summary = events[0]
        assert isinstance(summary, SourceSummary)
        assert (summary.count, summary.dimension, summary.metric) == (
            len(data.ids),
            data.embeddings.shape[1],
            METRICS[data.space],
        )
        assert summary.index.m == 24 and not summary.target_exists
        phases = [e.phase for e in events if isinstance(e, Progress)]
        assert phases[0] == "writing" and phases[-1] == "done" and "indexing" in phases and "verifying" in phases
        assert report is not None and report.ok, report
        assert report.source_count == report.target_count == len(data.ids)
        assert report.sampled == 100 and report.queries_compared == 10 == report.queries_matching
        collection = client.get_collection(f"m_{name}")
        assert collection.metric == METRICS[data.space]
        assert collection.index == HnswIndex(24, 100)  # Chroma's default ef_construction, carried over
        assert_same_documents(
            client, f"m_{name}", data.ids, data.documents, data.metadatas, data.embeddings, CHROMA_ULPS[data.space]
        )
    assert tree_digest(path) == before, "the source directory must not change"


@pytest.mark.parametrize("version", ["0.4.24", "0.5.23", "0.6.3"])
def test_directories_of_older_chroma_releases_migrate(client: Client, version: str, tmp_path: Path) -> None:
    source = tmp_path / version
    shutil.copytree(FIXTURES / version, source)  # the committed fixture stays pristine even if this failed
    before = tree_digest(source)
    expected = fixture_expected(version)
    for name, data in expected["collections"].items():
        target = f"v{version.replace('.', '_')}_{name.replace('-', '_')}"
        events, report = run(client, source, name, target=target)
        summary = events[0]
        assert isinstance(summary, SourceSummary)
        assert summary.metric == METRICS[data["space"]], "the space comes from the collection, not Chroma's default"
        assert (summary.index.m, summary.index.ef_construction) == (12, 80)
        assert report is not None and report.ok, report
        assert_same_documents(
            client,
            target,
            data["ids"],
            data["documents"],
            data["metadatas"],
            np.array(data["embeddings"]),
            CHROMA_ULPS[data["space"]],
        )
    assert tree_digest(source) == before


def test_a_chroma_0_3_directory_gets_the_upgrade_path(client: Client) -> None:
    with pytest.raises(FailedPreconditionError) as caught:
        run(client, FIXTURES / "0.3.29", "articles")
    assert caught.value.reason == "CHROMA_LEGACY_FORMAT"
    assert "chroma-migrate" in str(caught.value) and "0.3" in str(caught.value)


def test_dry_run_writes_nothing(client: Client, store: tuple[Path, dict[str, Written]]) -> None:
    path, _ = store
    events, report = run(client, path, "ip_docs", target="dry_ip", dry_run=True)
    assert report is None and len(events) == 1
    summary = events[0]
    assert isinstance(summary, SourceSummary)
    assert summary.count == 700 and summary.dimension == 4 and summary.metric == "inner_product"
    assert {"n", "ratio", "flag", "name", "whole", "tags", "nums"} <= set(summary.metadata_keys)
    assert summary.target == "dry_ip" and not summary.target_exists
    with pytest.raises(NotFoundError):
        client.get_collection("dry_ip")


def test_bad_requests_name_the_problem(client: Client, store: tuple[Path, dict[str, Written]], tmp_path: Path) -> None:
    path, _ = store
    with pytest.raises(NotFoundError) as caught:
        run(client, tmp_path / "nowhere", "x")
    assert caught.value.reason == "CHROMA_SOURCE_NOT_FOUND"
    with pytest.raises(NotFoundError) as caught:
        run(client, path, "no_such_collection")
    assert caught.value.reason == "CHROMA_COLLECTION_NOT_FOUND"
    with pytest.raises(InvalidArgumentError) as bad:
        run(client, path, "ip_docs", batch_size=20_000)
    assert bad.value.field == "batch_size"
    client.create_collection("other_dim", 3, metric="inner_product")
    with pytest.raises(FailedPreconditionError) as mismatch:
        run(client, path, "ip_docs", target="other_dim")
    assert mismatch.value.reason == "TARGET_MISMATCH"
    with pytest.raises(InvalidArgumentError) as bad_name:
        run(client, path, "ip_docs", target="bad name!")
    assert bad_name.value.field == "target"
