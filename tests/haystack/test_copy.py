"""Copying a real pgvector-haystack PgvectorDocumentStore (on the same PostgreSQL) into a
collection: exact, paged, resumable, verified; and the CLI form."""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
import yaml
from haystack import Document
from haystack.dataclasses import ByteStream
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.document_stores.types import DuplicatePolicy
from haystack.utils import Secret
from haystack_integrations.document_stores.chroma import ChromaDocumentStore
from haystack_integrations.document_stores.pgvector import PgvectorDocumentStore
from haystack_integrations.document_stores.pgvector_grpc import PgvectorGrpcDocumentStore
from haystack_integrations.document_stores.pgvector_grpc.copy import CopyProgress, copy_documents, verify_copy
from pgvector_grpc import Client

from tests.cli.run import error_line
from tests.fix_server import ServerThread
from tests.haystack.stores import drop, new_store

DIMENSION = 16


def hnsw_indexes(database: str, collection: str) -> int:
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = 'pgvector_grpc' AND tablename = %s"
            " AND indexdef LIKE '%%USING hnsw%%'",
            (collection,),
        ).fetchone()
    return int(row[0]) if row else 0


def seed_documents(count: int) -> list[Document]:
    """Documents as the seed wrote them: float32 embeddings, varied metadata, some without text or vector."""
    rng = random.Random(7)
    docs = []
    for i in range(count):
        meta = {
            "source": f"file-{i % 17}.pdf",
            "page": i % 50,
            "score": rng.random(),
            "tags": ["a", "ü", str(i % 3)],
            "nested": {"k": i, "none": None},
            "flag": i % 2 == 0,
        }
        embedding = None if i % 97 == 0 else np.float32(np.random.default_rng(i).normal(size=DIMENSION)).tolist()
        content = None if i % 89 == 0 else f"chunk {i} — ünïcode"
        docs.append(Document(id=f"seed-{i:05d}", content=content, meta=meta, embedding=embedding))
    return docs


@pytest.fixture
def source(database: str, request: pytest.FixtureRequest) -> Iterator[PgvectorDocumentStore]:
    store = PgvectorDocumentStore(
        connection_string=Secret.from_token(database),
        table_name="seed_" + request.node.name[-40:].lower().replace("[", "_").replace("]", "_"),
        embedding_dimension=DIMENSION,
        recreate_table=True,
    )
    store.write_documents(seed_documents(1234))
    yield store
    store.delete_table()


@pytest.fixture
def target(server: ServerThread) -> Iterator[PgvectorGrpcDocumentStore]:
    store = new_store(server, dimension=DIMENSION)
    yield store
    store.close()
    drop(server, store)


def test_copy_is_exact_and_verified_document_by_document(
    source: PgvectorDocumentStore, target: PgvectorGrpcDocumentStore
) -> None:
    progress: list[CopyProgress] = []
    report = copy_documents(source, target, batch_size=100, on_progress=progress.append)
    assert report.ok, report
    assert (report.source_count, report.copied, report.target_count, report.compared) == (1234, 1234, 1234, 1234)
    assert [p.copied for p in progress] == [*range(100, 1234, 100), 1234]

    expected = {d.id: d for d in source.filter_documents()}
    copied = target.filter_documents()
    assert len(copied) == len(expected)
    for doc in copied:
        original = expected[doc.id]
        assert (doc.content, doc.meta, doc.embedding) == (original.content, original.meta, original.embedding)


def test_an_interrupted_copy_resumes_after_its_last_committed_page(
    source: PgvectorDocumentStore, target: PgvectorGrpcDocumentStore, database: str
) -> None:
    def stop_after_three_pages(p: CopyProgress) -> None:
        if p.copied == 300:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_documents(source, target, batch_size=100, on_progress=stop_after_three_pages)
    assert target.count_documents() == 300
    assert hnsw_indexes(database, target.collection) == 0, "the vector index waits for the end of the load"

    report = copy_documents(source, target, batch_size=100)
    assert report.resumed_from == 300 and report.ok
    assert hnsw_indexes(database, target.collection) == 1
    assert target.count_documents() == 1234

    again = copy_documents(source, target, batch_size=100, restart=True)
    assert again.resumed_from == 0 and again.copied == 1234 and again.ok


def test_verification_catches_a_deleted_and_an_altered_document(
    source: PgvectorDocumentStore, target: PgvectorGrpcDocumentStore
) -> None:
    report = copy_documents(source, target, batch_size=500)
    assert report.ok
    target.delete_documents(["seed-00010"])
    altered = target.filter_documents({"field": "meta.page", "operator": "==", "value": 20})[0]
    nudged = [*altered.embedding[:-1], altered.embedding[-1] + 1e-3]
    target.write_documents([dataclasses.replace(altered, embedding=nudged)], policy=DuplicatePolicy.OVERWRITE)

    checked = verify_copy(source, target, report)
    assert not checked.ok and checked.mismatch_count == 2
    assert sorted(checked.mismatches) == sorted(
        ["'seed-00010': missing", f"{altered.id!r}: embedding differs in 1 of {DIMENSION} values"]
    )


def test_a_document_with_a_blob_stops_the_copy_naming_it(
    source: PgvectorDocumentStore, target: PgvectorGrpcDocumentStore
) -> None:
    source.write_documents([Document(id="seed-00000-blob", blob=ByteStream(b"%PDF", mime_type="application/pdf"))])
    with pytest.raises(ValueError, match=r"seed-00000-blob.*blob"):
        copy_documents(source, target, batch_size=100)
    assert target.count_documents() == 0, "the page holding it was not written"


def serialised(source: PgvectorDocumentStore, database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``source`` serialised to a YAML file as a pipeline would keep it: the connection string as an
    environment variable's name (set here), not its value."""
    monkeypatch.setenv("PG_CONN_STR", database)
    described = PgvectorDocumentStore(
        connection_string=Secret.from_env_var("PG_CONN_STR"),
        table_name=source.table_name,
        embedding_dimension=DIMENSION,
    )
    store_file = tmp_path / "store.yaml"
    store_file.write_text(yaml.safe_dump(described.to_dict()))
    return store_file


def test_the_cli_copies_a_serialised_store_and_reports(
    source: PgvectorDocumentStore,
    server: ServerThread,
    database: str,
    tmp_path: Path,
    target: PgvectorGrpcDocumentStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store_file = serialised(source, database, tmp_path, monkeypatch)
    assert database not in store_file.read_text()
    command = [sys.executable, "-m", "pgvector_grpc_server", "migrate", "--from-haystack", str(store_file)]
    to = ["--to", target.collection, "--server", server.address]

    dry = subprocess.run([*command, *to, "--dry-run"], capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert "1,234 documents, dimension 16, metric cosine" in dry.stdout
    with Client(server.address) as client:
        assert target.collection not in [c.name for c in client.list_collections()], "a dry run creates nothing"

    done = subprocess.run([*command, *to, "--batch-size", "300"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "verification: OK" in done.stdout and "compared field by field: 1,234" in done.stdout
    assert f"{target.collection}: 1,234/1,234" in done.stderr
    assert target.count_documents() == 1234

    again = subprocess.run([*command, *to, "--json"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    document = json.loads(again.stdout)
    assert document["source"] == {"type": "PgvectorDocumentStore", "count": 1234, "dimension": 16, "metric": "cosine"}
    assert document["target"] == target.collection and document["error"] is None
    report = document["report"]
    assert report["ok"] is True and report["compared"] == report["source_count"] == report["target_count"] == 1234
    assert report["resumed_from"] == 1234 and report["extra_count"] == 0  # the re-run resumed after the copy

    missing_target = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert missing_target.returncode == 2 and "--to" in missing_target.stderr


def test_any_other_store_is_copied_through_filter_documents(
    target: PgvectorGrpcDocumentStore, server: ServerThread
) -> None:
    source = InMemoryDocumentStore()
    source.write_documents(seed_documents(250))
    report = copy_documents(source, target, batch_size=100)
    assert report.ok and (report.copied, report.target_count, report.compared) == (250, 250, 250)
    again = copy_documents(source, target, batch_size=100)
    assert again.resumed_from == 0 and again.ok and target.count_documents() == 250, "a re-run upserts"

    subset_target = new_store(server, dimension=DIMENSION)
    try:
        subset = copy_documents(source, subset_target, filters={"field": "meta.page", "operator": "<", "value": 10})
        assert subset.ok and subset.copied == subset.source_count == subset_target.count_documents() == 50
    finally:
        subset_target.close()
        drop(server, subset_target)


def test_a_chroma_haystack_store_is_copied_and_its_metric_kept(
    target: PgvectorGrpcDocumentStore, server: ServerThread, tmp_path: Path
) -> None:
    source = ChromaDocumentStore(collection_name="seed", persist_path=str(tmp_path / "chroma"), distance_function="ip")
    docs = [
        Document(
            id=f"chroma-{i}",
            content=f"text {i}",
            meta={"n": i, "f": i / 4, "even": i % 2 == 0, "s": "ü"},
            embedding=np.float32(np.random.default_rng(i).normal(size=DIMENSION)).tolist(),
        )
        for i in range(120)
    ]
    source.write_documents(docs)
    report = copy_documents(source, target, batch_size=50)
    assert report.ok and report.copied == report.compared == 120
    copied = {d.id: d for d in target.filter_documents()}
    for doc in docs:
        assert (copied[doc.id].content, copied[doc.id].meta, copied[doc.id].embedding) == (
            doc.content,
            doc.meta,
            doc.embedding,
        )

    store_file = tmp_path / "chroma-store.yaml"
    store_file.write_text(yaml.safe_dump(source.to_dict()))
    dry = subprocess.run(
        [
            sys.executable,
            "-m",
            "pgvector_grpc_server",
            "migrate",
            "--from-haystack",
            str(store_file),
            "--to",
            "from_chroma",
            "--server",
            server.address,
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dry.returncode == 0, dry.stderr
    assert "ChromaDocumentStore, 120 documents, dimension 16, metric inner_product" in dry.stdout


def test_documents_deleted_in_the_source_are_listed_then_deleted_with_mirror(
    source: PgvectorDocumentStore, target: PgvectorGrpcDocumentStore
) -> None:
    assert copy_documents(source, target, batch_size=100).ok
    gone = ["seed-00000", "seed-00001", "seed-00500", "seed-01233"]
    source.delete_documents(gone)

    kept = copy_documents(source, target, batch_size=100, restart=True)
    assert not kept.ok
    assert (kept.extra_count, sorted(kept.extra_ids), kept.deleted_count) == (4, gone, 0)
    assert kept.mismatch_count == 0 and kept.compared == kept.source_count == 1230
    assert target.count_documents() == 1234

    mirrored = copy_documents(source, target, batch_size=100, mirror=True)
    assert mirrored.ok, mirrored
    assert (mirrored.deleted_count, mirrored.extra_count, mirrored.target_count) == (4, 0, 1230)
    assert target.count_documents() == 1230
    assert {d.id for d in target.filter_documents()} == {d.id for d in source.filter_documents()}


def test_mirror_copies_any_other_store_and_a_filtered_one_to_the_letter(
    target: PgvectorGrpcDocumentStore,
) -> None:
    source = InMemoryDocumentStore()
    source.write_documents(seed_documents(250))
    assert copy_documents(source, target, batch_size=100).ok
    source.delete_documents(["seed-00007", "seed-00249"])

    kept = copy_documents(source, target, batch_size=100)
    assert not kept.ok and kept.extra_count == 2 and sorted(kept.extra_ids) == ["seed-00007", "seed-00249"]

    unverified = copy_documents(source, target, batch_size=100, mirror=True, verify=False)
    assert unverified.deleted_count == 2 and target.count_documents() == 248

    subset = {"field": "meta.page", "operator": "<", "value": 10}
    narrowed = copy_documents(source, target, batch_size=100, filters=subset, mirror=True)
    assert narrowed.ok and narrowed.deleted_count == 248 - 50 + 1  # seed-00007 (page 7) is gone from the source
    assert target.count_documents() == narrowed.source_count == 49


def test_the_cli_mirrors_a_serialised_store(
    source: PgvectorDocumentStore,
    server: ServerThread,
    database: str,
    tmp_path: Path,
    target: PgvectorGrpcDocumentStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store_file = serialised(source, database, tmp_path, monkeypatch)
    command = [sys.executable, "-m", "pgvector_grpc_server", "migrate", "--from-haystack", str(store_file)]
    command += ["--to", target.collection, "--server", server.address, "--batch-size", "500"]
    assert subprocess.run(command, capture_output=True, text=True, timeout=120).returncode == 0
    source.delete_documents(["seed-00002", "seed-00003"])

    kept = subprocess.run([*command, "--restart"], capture_output=True, text=True, timeout=120)
    assert kept.returncode == 1, kept.stderr
    assert (
        "2 documents in the target are not in the source (e.g. 'seed-00002', 'seed-00003'); "
        "re-run with --mirror to delete them"
    ) in kept.stdout

    mirrored = subprocess.run([*command, "--mirror"], capture_output=True, text=True, timeout=120)
    assert mirrored.returncode == 0, mirrored.stdout + mirrored.stderr
    assert "verification: OK" in mirrored.stdout and "deleted 2 target documents" in mirrored.stdout
    assert target.count_documents() == 1232


def test_the_cli_reports_a_copy_that_cannot_run_as_migrate_does(server: ServerThread, tmp_path: Path) -> None:
    source = ChromaDocumentStore(collection_name="refused", persist_path=str(tmp_path / "chroma"))
    embeddings = np.random.default_rng(3).normal(size=(10, DIMENSION)).astype(np.float32)
    source.write_documents(
        [Document(id=f"r-{i}", content=f"text {i}", embedding=e.tolist()) for i, e in enumerate(embeddings)]
    )
    store_file = tmp_path / "store.yaml"
    store_file.write_text(yaml.safe_dump(source.to_dict()))
    command = [sys.executable, "-m", "pgvector_grpc_server", "migrate", "--server", server.address]

    refused = subprocess.run(
        [*command, "--from-haystack", str(store_file), "--to", "bad name"], capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 2
    refusal = (
        "collection.name: collection name 'bad name' must be 1-63 characters of [A-Za-z0-9_.-], "
        "starting with a letter or digit"
    )
    assert error_line(refused) == f"pgvector-grpc: INVALID_ARGUMENT: bad name: {refusal}"
    as_json = subprocess.run(
        [*command, "--from-haystack", str(store_file), "--to", "bad name", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert as_json.returncode == 2 and error_line(as_json) == error_line(refused)
    assert json.loads(as_json.stdout) == {
        "source": {"type": "ChromaDocumentStore", "count": 10, "dimension": DIMENSION, "metric": "l2"},
        "target": "bad name",
        "report": None,
        "error": {
            "code": "INVALID_ARGUMENT",
            "reason": "BAD_COLLECTION_NAME",
            "message": f"INVALID_ARGUMENT: {refusal}",
        },
    }

    missing = tmp_path / "no-such-store.yaml"
    unreadable = subprocess.run(
        [*command, "--from-haystack", str(missing), "--to", "docs", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unreadable.returncode == 2
    message = f"cannot read {str(missing)!r}: No such file or directory"
    assert error_line(unreadable) == f"pgvector-grpc: HAYSTACK_STORE_UNREADABLE: docs: {message}"
    assert json.loads(unreadable.stdout) == {
        "source": None,
        "target": "docs",
        "report": None,
        "error": {"code": None, "reason": "HAYSTACK_STORE_UNREADABLE", "message": message},
    }


def test_the_cli_names_a_document_the_copy_cannot_hold(
    source: PgvectorDocumentStore,
    server: ServerThread,
    database: str,
    tmp_path: Path,
    target: PgvectorGrpcDocumentStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source.write_documents([Document(id="seed-00000-blob", blob=ByteStream(b"%PDF", mime_type="application/pdf"))])
    store_file = serialised(source, database, tmp_path, monkeypatch)
    command = [sys.executable, "-m", "pgvector_grpc_server", "migrate", "--from-haystack", str(store_file)]
    done = subprocess.run(
        [*command, "--to", target.collection, "--server", server.address, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    message = (
        "document 'seed-00000-blob' has a blob (application/pdf), which pgvector-grpc does not store: "
        "nothing of its page was copied"
    )
    assert error_line(done) == f"pgvector-grpc: HAYSTACK_COPY_FAILED: {target.collection}: {message}"
    document = json.loads(done.stdout)
    assert document["source"] is None and document["report"] is None  # the sample that describes it holds the blob
    assert document["error"] == {"code": None, "reason": "HAYSTACK_COPY_FAILED", "message": message}
