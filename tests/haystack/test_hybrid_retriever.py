"""The hybrid retriever in real Haystack pipelines: a rare code the embedding misses comes up through the
keywords, fused scores, filters on both rankings, a YAML round trip, async, and a store without text search."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from haystack import Document, Pipeline
from haystack_integrations.components.retrievers.pgvector_grpc import PgvectorGrpcHybridRetriever
from haystack_integrations.document_stores.pgvector_grpc import PgvectorGrpcDocumentStore
from pgvector_grpc import FailedPreconditionError

from tests.fix_server import ServerThread
from tests.haystack.stores import drop, new_store

DOCS = [
    Document(id="manual", content="pump manual: priming and pressure", meta={"kind": "doc"}, embedding=[1.0, 0.0, 0.0]),
    Document(id="faq", content="pump questions and answers", meta={"kind": "doc"}, embedding=[0.9, 0.1, 0.0]),
    Document(
        id="ticket", content="error PX-7731, PX-7731 on start", meta={"kind": "ticket"}, embedding=[0.0, 0.0, 1.0]
    ),
    Document(id="note", content="error PX-7731 seen again", meta={"kind": "note"}, embedding=[0.0, 1.0, 0.0]),
]
QUERY = [1.0, 0.05, 0.0]  # near the pump documents, far from both PX-7731 documents


@pytest.fixture
def store(server: ServerThread) -> Iterator[PgvectorGrpcDocumentStore]:
    store = new_store(server, dimension=3, text_search="simple")
    store.write_documents(DOCS)
    yield store
    store.close()
    drop(server, store)


def test_a_rare_code_comes_up_through_the_keywords_with_fused_scores(store: PgvectorGrpcDocumentStore) -> None:
    retriever = PgvectorGrpcHybridRetriever(document_store=store, top_k=3)
    docs = retriever.run(query="PX-7731", query_embedding=QUERY)["documents"]
    # ticket: keyword rank 1 and vector rank 4; manual: vector rank 1 only; note: keyword rank 2, vector rank 3.
    assert [d.id for d in docs] == ["ticket", "note", "manual"]
    assert docs[0].score == pytest.approx(1 / 61 + 1 / 64)
    assert docs[2].score == pytest.approx(1 / 61)
    weighted = PgvectorGrpcHybridRetriever(document_store=store, top_k=1, keyword_weight=0.01)
    assert [d.id for d in weighted.run(query="PX-7731", query_embedding=QUERY)["documents"]] == ["manual"]


def test_filters_restrict_both_rankings(store: PgvectorGrpcDocumentStore) -> None:
    no_tickets = {"field": "meta.kind", "operator": "!=", "value": "ticket"}
    retriever = PgvectorGrpcHybridRetriever(document_store=store, filters=no_tickets, top_k=4)
    docs = retriever.run(query="PX-7731", query_embedding=QUERY)["documents"]
    assert [d.id for d in docs] == ["note", "manual", "faq"]


def test_a_pipeline_with_it_survives_a_yaml_round_trip(
    store: PgvectorGrpcDocumentStore, server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGVECTOR_GRPC_ADDRESS", server.address)
    by_env = PgvectorGrpcDocumentStore(collection=store.collection, embedding_dimension=3, text_search="simple")
    pipeline = Pipeline()
    pipeline.add_component("retriever", PgvectorGrpcHybridRetriever(document_store=by_env, top_k=2, rrf_k=10))
    loaded = Pipeline.loads(pipeline.dumps())
    inputs = {"retriever": {"query": "pump", "query_embedding": [0.0, 0.0, 1.0]}}
    result = loaded.run(inputs)
    assert result == pipeline.run(inputs)
    # Neither pump document is near [0, 0, 1], but both match "pump": fused, they pass the nearest one.
    assert [d.id for d in result["retriever"]["documents"]] == ["faq", "manual"]
    assert loaded.get_component("retriever").document_store.text_search == "simple"
    by_env.close()


async def test_it_runs_asynchronously(store: PgvectorGrpcDocumentStore) -> None:
    retriever = PgvectorGrpcHybridRetriever(document_store=store, top_k=1)
    result = await retriever.run_async(query="seen again", query_embedding=QUERY)
    assert [d.id for d in result["documents"]] == ["note"]
    await store.close_async()


def test_a_store_without_text_search_says_so(server: ServerThread) -> None:
    plain = new_store(server, dimension=3)
    try:
        plain.write_documents(DOCS[:1])
        with pytest.raises(FailedPreconditionError, match="query_text"):
            PgvectorGrpcHybridRetriever(document_store=plain).run(query="pump", query_embedding=QUERY)
    finally:
        plain.close()
        drop(server, plain)
