"""Ingest in columnar form (DocumentColumns): every field round-trips exactly, and malformed columns
are INVALID_ARGUMENT naming the column, with nothing written."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest
from pgvector_grpc import Client, Document, DocumentColumns
from pgvector_grpc.v1 import document_service_pb2, document_service_pb2_grpc

from tests.fix_server import ServerThread


def test_every_field_round_trips_exactly(client: Client, collection_name: str) -> None:
    client.create_collection(collection_name, 3)
    metadatas = [
        {"int": 7, "float": 7.0, "big": 2**53 + 1, "neg": -0.5, "nested": {"a": [1, {"b": 2.5}]}},
        None,
        {"t": True, "nil": None, "s": "ünïcødé"},
        {},
    ]
    columns = DocumentColumns(
        ids=["full", "no-text", "empty-text", "ünïcødé/🚀 id"],
        embeddings=np.array([[0.1, 0.2, 0.3], [1, 0, 0], [0.5, 0.25, 0.125], [1e-3, 2, 3]], dtype=np.float32),
        contents=["text", None, "", "ok"],
        metadatas=metadatas,
    )
    summary = client.ingest(collection_name, columns, batch_size=3)
    assert (summary.batches, summary.inserted) == (2, 4)
    got = {d.id: d for d in client.get(collection_name, list(columns.ids), include_embedding=True)}
    for i, doc_id in enumerate(columns.ids):
        assert got[doc_id].content == columns.contents[i]  # type: ignore[index]
        expected = metadatas[i] or {}
        assert json.dumps(got[doc_id].metadata, sort_keys=True) == json.dumps(expected, sort_keys=True)
        assert got[doc_id].embedding is not None and got[doc_id].embedding.dtype == np.float32
        np.testing.assert_array_equal(got[doc_id].embedding, columns.embeddings[i])
    assert isinstance(got["full"].metadata["int"], int) and isinstance(got["full"].metadata["float"], float)
    assert got["no-text"].content is None and got["empty-text"].content == ""


def test_float64_values_come_back_exactly(client: Client, collection_name: str) -> None:
    client.create_collection(collection_name, 2)
    doubles = np.array([[0.1, 1 / 3], [0.5, 0.25]], dtype=np.float64)  # row 1 fits float32, row 0 does not
    client.ingest(collection_name, DocumentColumns(["a", "b"], doubles))
    got = {d.id: d.embedding for d in client.get(collection_name, ["a", "b"], include_embedding=True)}
    assert got["a"] is not None and got["a"].dtype == np.float64
    np.testing.assert_array_equal(got["a"], doubles[0])
    np.testing.assert_array_equal(got["b"], doubles[1])


def test_the_same_documents_either_way_read_the_same(client: Client, collection_name: str) -> None:
    client.create_collection(collection_name, 2)
    client.create_collection(f"{collection_name}_docs", 2)
    vectors = np.array([[1, 2], [3, 4]], dtype=np.float32)
    client.ingest(collection_name, DocumentColumns(["x", "y"], vectors, ["a", None], [{"k": 1}, None]))
    client.ingest(
        f"{collection_name}_docs", [Document("x", "a", {"k": 1}, vectors[0]), Document("y", None, {}, vectors[1])]
    )
    as_columns = client.get(collection_name, ["x", "y"], include_embedding=True)
    as_documents = client.get(f"{collection_name}_docs", ["x", "y"], include_embedding=True)
    for one, other in zip(as_columns, as_documents, strict=True):
        assert (one.id, one.content, one.metadata) == (other.id, other.content, other.metadata)
        np.testing.assert_array_equal(one.embedding, other.embedding)  # type: ignore[arg-type]


def test_columns_without_embeddings_or_metadata(client: Client, collection_name: str) -> None:
    client.create_collection(collection_name, 2)
    client.ingest(collection_name, DocumentColumns(["p", "q"], contents=["only text", None]))
    got = {d.id: d for d in client.get(collection_name, ["p", "q"], include_embedding=True)}
    assert got["p"].content == "only text" and got["q"].content is None
    assert got["p"].embedding is None and got["p"].metadata == {}


def _rejected(server: ServerThread, columns: document_service_pb2.DocumentColumns, collection: str) -> grpc.RpcError:
    request = document_service_pb2.IngestRequest(collection=collection, columns=columns)
    with grpc.insecure_channel(server.address) as channel:
        stub = document_service_pb2_grpc.DocumentServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            list(stub.Ingest(iter([request]), timeout=10))
    return err.value


@pytest.mark.parametrize(
    ("columns", "field"),
    [
        (
            document_service_pb2.DocumentColumns(ids=["a", "b"], dimension=2, embeddings=b"\0" * 12),
            "batches[0].columns.embeddings",
        ),
        (
            document_service_pb2.DocumentColumns(ids=["a", "b"], dimension=3, embeddings=b"\0" * 16),
            "batches[0].columns.embeddings",
        ),
        (
            document_service_pb2.DocumentColumns(ids=["a", "b"], dimension=2, embeddings_f64=b"\0" * 16),
            "batches[0].columns.embeddings_f64",
        ),
        (
            document_service_pb2.DocumentColumns(ids=["a"], embeddings=b"\0" * 8),
            "batches[0].columns.dimension",
        ),
        (
            document_service_pb2.DocumentColumns(ids=["a", "b"], contents=["x"]),
            "batches[0].columns.contents",
        ),
        (
            document_service_pb2.DocumentColumns(ids=["a", "b"], metadata_json=["{}", "{}", "{}"]),
            "batches[0].columns.metadata_json",
        ),
        (
            document_service_pb2.DocumentColumns(ids=["a"], contents=["x"], content_missing=[True]),
            "batches[0].columns.contents[0]",
        ),
    ],
    ids=["short", "dimension", "f64_short", "no_dimension", "contents", "metadata", "missing_but_text"],
)
def test_malformed_columns_are_rejected(
    client: Client,
    server: ServerThread,
    collection_name: str,
    columns: document_service_pb2.DocumentColumns,
    field: str,
) -> None:
    client.create_collection(collection_name, 2)
    error = _rejected(server, columns, collection_name)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error.details(), error.details()
    assert client.count(collection_name) == 0


def test_documents_and_columns_together_are_rejected(
    server: ServerThread, client: Client, collection_name: str
) -> None:
    client.create_collection(collection_name, 2)
    request = document_service_pb2.IngestRequest(collection=collection_name, columns={"ids": ["a"]})
    request.documents.add(id="b")
    with grpc.insecure_channel(server.address) as channel:
        stub = document_service_pb2_grpc.DocumentServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            list(stub.Ingest(iter([request]), timeout=10))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "batches[0].columns" in err.value.details()


def test_the_client_checks_column_lengths() -> None:
    with pytest.raises(ValueError, match="shape"):
        DocumentColumns(["a", "b"], np.zeros((3, 2)))
    with pytest.raises(ValueError, match="contents"):
        DocumentColumns(["a", "b"], contents=["x"])
