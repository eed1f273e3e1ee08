"""The store's compact vector storage (the index of the collection it creates) and its read
consistency: what it creates on the server, that retrieval still finds the nearest document, the
serialised form, and the errors for values the server would refuse."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from haystack import Document, Pipeline
from haystack.utils import Secret
from haystack_integrations.components.retrievers.pgvector_grpc import PgvectorGrpcEmbeddingRetriever
from haystack_integrations.document_stores.pgvector_grpc import PgvectorGrpcDocumentStore
from pgvector_grpc import Client, HnswIndex

from tests.fix_server import ServerThread
from tests.haystack.stores import drop, new_store

DOCS = [
    Document(id="north", content="north", meta={"side": "top"}, embedding=[0.0, 1.0, 0.1]),
    Document(id="east", content="east", meta={"side": "right"}, embedding=[1.0, 0.0, 0.1]),
    Document(id="north-east", content="north-east", meta={"side": "top"}, embedding=[0.7, 0.7, 0.1]),
    Document(id="south", content="south", meta={"side": "bottom"}, embedding=[0.0, -1.0, 0.1]),
]


@pytest.mark.parametrize(
    ("options", "index"),
    [
        ({"vector_storage": "halfvec"}, HnswIndex(16, 64, storage="halfvec", rerank_factor=2)),
        ({"vector_storage": "halfvec", "rerank_factor": 4, "hnsw_m": 8}, HnswIndex(8, 64, "halfvec", 4)),
        ({"vector_storage": "bit", "rerank_factor": 20}, HnswIndex(16, 64, storage="bit", rerank_factor=20)),
    ],
)
def test_a_compact_store_creates_its_index_so_and_retrieves_the_nearest(
    server: ServerThread, options: dict[str, Any], index: HnswIndex
) -> None:
    store = new_store(server, dimension=3, **options)
    try:
        store.write_documents(DOCS)
        with Client(server.address) as client:
            assert client.get_collection(store.collection).index == index
        retriever = PgvectorGrpcEmbeddingRetriever(document_store=store, top_k=2)
        docs = retriever.run(query_embedding=[0.1, 0.9, 0.1])["documents"]
        assert [d.id for d in docs] == ["north", "north-east"]
        query, nearest = np.array([0.1, 0.9, 0.1]), np.array(DOCS[0].embedding)
        exact = query @ nearest / np.linalg.norm(query) / np.linalg.norm(nearest)
        assert docs[0].score == pytest.approx(exact, abs=1e-6)  # re-ranked by the full vectors' distance
        below = {"field": "meta.side", "operator": "==", "value": "bottom"}
        assert [d.id for d in retriever.run(query_embedding=[0.1, 0.9, 0.1], filters=below)["documents"]] == ["south"]
        assert store.count_documents() == len(DOCS)
    finally:
        store.close()
        drop(server, store)


async def test_a_compact_store_used_asynchronously_first_creates_its_index_so(server: ServerThread) -> None:
    store = new_store(server, dimension=3, vector_storage="halfvec", read_from_primary=True)
    try:
        await store.write_documents_async(DOCS)
        with Client(server.address) as client:
            assert client.get_collection(store.collection).index == HnswIndex(storage="halfvec")
        hits = await store._embedding_retrieval_async([0.0, -0.9, 0.2], top_k=1)
        assert [d.id for d in hits] == ["south"]
        assert (
            await store.count_documents_by_filter_async({"field": "meta.side", "operator": "==", "value": "top"}) == 2
        )
    finally:
        await store.close_async()
        drop(server, store)


def test_a_store_reading_from_the_primary_reads_and_searches(server: ServerThread) -> None:
    """Without read replicas the primary answers every read anyway: each read still goes through."""
    store = new_store(server, dimension=3, read_from_primary=True)
    top = {"field": "meta.side", "operator": "==", "value": "top"}
    try:
        store.write_documents(DOCS)
        assert store.count_documents() == len(DOCS)
        assert [d.id for d in store.filter_documents(top)] == ["north", "north-east"]
        assert store.count_documents_by_filter(top) == 2
        assert store.count_unique_metadata_by_filter({}, ["meta.side"]) == {"side": 3}
        assert store.get_metadata_fields_info() == {"side": {"type": "keyword"}}
        assert store.get_metadata_field_min_max("meta.side") == {"min": "bottom", "max": "top"}
        assert store.get_metadata_field_unique_values("meta.side") == (["bottom", "right", "top"], 3)
        hits = PgvectorGrpcEmbeddingRetriever(document_store=store, top_k=1).run(query_embedding=[1.0, 0.1, 0.1])
        assert [d.id for d in hits["documents"]] == ["east"]
        existing = PgvectorGrpcDocumentStore(
            address=Secret.from_token(server.address),
            collection=store.collection,
            embedding_dimension=3,
            read_from_primary=True,
            create_collection=False,
        )
        assert existing.count_documents() == len(DOCS)  # the collection looked up on the primary
        existing.close()
    finally:
        store.close()
        drop(server, store)


def test_the_new_settings_survive_to_dict_from_dict_and_a_pipeline_file() -> None:
    store = PgvectorGrpcDocumentStore(
        collection="compact",
        embedding_dimension=384,
        vector_storage="bit",
        rerank_factor=50,
        read_from_primary=True,
    )
    data = store.to_dict()
    assert {k: data["init_parameters"][k] for k in ("vector_storage", "rerank_factor", "read_from_primary")} == {
        "vector_storage": "bit",
        "rerank_factor": 50,
        "read_from_primary": True,
    }
    loaded = PgvectorGrpcDocumentStore.from_dict(data)
    assert (loaded.vector_storage, loaded.rerank_factor, loaded.read_from_primary) == ("bit", 50, True)
    assert loaded.to_dict() == store.to_dict()
    pipeline = Pipeline()
    pipeline.add_component("retriever", PgvectorGrpcEmbeddingRetriever(document_store=store))
    reloaded = Pipeline.loads(pipeline.dumps()).get_component("retriever").document_store
    assert reloaded.to_dict() == store.to_dict()


def test_a_store_serialised_before_these_settings_loads_with_their_defaults() -> None:
    data = PgvectorGrpcDocumentStore(collection="older").to_dict()
    for key in ("vector_storage", "rerank_factor", "read_from_primary"):
        del data["init_parameters"][key]
    loaded = PgvectorGrpcDocumentStore.from_dict(data)
    assert (loaded.vector_storage, loaded.rerank_factor, loaded.read_from_primary) == ("vector", None, False)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"vector_storage": "half"}, "vector_storage must be one of vector, halfvec, bit, got 'half'"),
        ({"vector_storage": "bit", "metric": "l2"}, "vector_storage 'bit' needs metric 'cosine', not 'l2'"),
        ({"vector_storage": "halfvec", "rerank_factor": 0}, "rerank_factor must be between 1 and 100, got 0"),
        ({"vector_storage": "bit", "rerank_factor": 101}, "rerank_factor must be between 1 and 100, got 101"),
        ({"vector_storage": "bit", "rerank_factor": "20"}, "rerank_factor must be an integer or None, got '20'"),
        ({"vector_storage": "bit", "rerank_factor": True}, "rerank_factor must be an integer or None, got True"),
        ({"rerank_factor": 4}, "rerank_factor applies to vector_storage 'halfvec' or 'bit' only"),
        ({"read_from_primary": "yes"}, "read_from_primary must be True or False, got 'yes'"),
    ],
)
def test_values_the_server_would_refuse_are_a_value_error_naming_the_parameter(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as refused:
        PgvectorGrpcDocumentStore(address=Secret.from_token("127.0.0.1:1"), embedding_dimension=3, **options)
    assert str(refused.value).startswith(message)
