"""The retriever in real Haystack pipelines: end to end, filter policies, YAML round trip, async."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from haystack import Document, Pipeline
from haystack.components.builders import PromptBuilder
from haystack.dataclasses import ByteStream, SparseEmbedding
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from haystack_integrations.components.retrievers.pgvector_grpc import PgvectorGrpcEmbeddingRetriever
from haystack_integrations.document_stores.pgvector_grpc import PgvectorGrpcDocumentStore

from tests.fix_server import ServerThread
from tests.haystack.stores import drop, new_store

TEMPLATE = "{% for d in documents %}{{ d.content }}|{% endfor %}"
DOCS = [
    Document(id="north", content="north", meta={"side": "top", "year": 2020}, embedding=[0.0, 1.0, 0.1]),
    Document(id="east", content="east", meta={"side": "right", "year": 2021}, embedding=[1.0, 0.0, 0.1]),
    Document(id="north-east", content="north-east", meta={"side": "top", "year": 2022}, embedding=[0.7, 0.7, 0.1]),
    Document(id="south", content="south", meta={"side": "bottom", "year": 2023}, embedding=[0.0, -1.0, 0.1]),
]


@pytest.fixture
def store(server: ServerThread, monkeypatch: pytest.MonkeyPatch) -> Iterator[PgvectorGrpcDocumentStore]:
    monkeypatch.setenv("PGVECTOR_GRPC_ADDRESS", server.address)
    named = new_store(server, dimension=3)
    store = PgvectorGrpcDocumentStore(collection=named.collection, embedding_dimension=3)  # address from the env
    store.write_documents(DOCS)
    yield store
    store.close()
    drop(server, store)


def pipeline_with(retriever: PgvectorGrpcEmbeddingRetriever) -> Pipeline:
    pipeline = Pipeline()
    pipeline.add_component("retriever", retriever)
    pipeline.add_component("prompt", PromptBuilder(template=TEMPLATE, required_variables=["documents"]))
    pipeline.connect("retriever.documents", "prompt.documents")
    return pipeline


def test_a_pipeline_retrieves_with_scores_and_feeds_the_next_component(store: PgvectorGrpcDocumentStore) -> None:
    retriever = PgvectorGrpcEmbeddingRetriever(document_store=store, top_k=2)
    query = [0.1, 0.9, 0.1]
    result = pipeline_with(retriever).run({"retriever": {"query_embedding": query}}, include_outputs_from={"retriever"})
    assert result["prompt"]["prompt"] == "north|north-east|"
    docs = result["retriever"]["documents"]
    for doc in docs:
        stored = next(d for d in DOCS if d.id == doc.id)
        a, b = np.array(query), np.array(stored.embedding)
        assert doc.score == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b), abs=1e-6)
        assert doc.meta == stored.meta and doc.embedding is None


def test_filter_policies_replace_and_merge(store: PgvectorGrpcDocumentStore) -> None:
    top = {"field": "meta.side", "operator": "==", "value": "top"}
    recent = {"field": "meta.year", "operator": ">=", "value": 2022}
    query = [0.0, 1.0, 0.1]
    replace = PgvectorGrpcEmbeddingRetriever(document_store=store, filters=top, top_k=4)
    assert [d.id for d in replace.run(query)["documents"]] == ["north", "north-east"]
    assert [d.id for d in replace.run(query, filters=recent)["documents"]] == ["north-east", "south"]
    merge = PgvectorGrpcEmbeddingRetriever(document_store=store, filters=top, top_k=4, filter_policy="merge")
    assert [d.id for d in merge.run(query, filters=recent)["documents"]] == ["north-east"]
    negated = {"operator": "NOT", "conditions": [top]}
    assert [d.id for d in replace.run(query, filters=negated, top_k=1)["documents"]] == ["east"]


def test_a_pipeline_survives_a_yaml_round_trip_without_the_address_in_it(
    store: PgvectorGrpcDocumentStore, server: ServerThread
) -> None:
    retriever = PgvectorGrpcEmbeddingRetriever(
        document_store=store, top_k=3, filters={"field": "meta.year", "operator": "<", "value": 2023}
    )
    pipeline = pipeline_with(retriever)
    text = pipeline.dumps()
    assert server.address not in text and "PGVECTOR_GRPC_ADDRESS" in text
    loaded = Pipeline.loads(text)
    inputs = {"retriever": {"query_embedding": [1.0, 0.2, 0.1]}}
    assert loaded.run(inputs) == pipeline.run(inputs) == {"prompt": {"prompt": "east|north-east|north|"}}
    reloaded_store = loaded.get_component("retriever").document_store
    assert reloaded_store.to_dict() == store.to_dict()


async def test_an_async_pipeline_runs_the_retriever_asynchronously(store: PgvectorGrpcDocumentStore) -> None:
    pipeline = Pipeline()
    pipeline.add_component("retriever", PgvectorGrpcEmbeddingRetriever(document_store=store, top_k=1))
    result = await pipeline.run_async({"retriever": {"query_embedding": [0.0, -1.0, 0.0]}})
    assert [d.id for d in result["retriever"]["documents"]] == ["south"]
    await store.close_async()


def test_blob_and_sparse_embedding_are_refused_not_dropped(store: PgvectorGrpcDocumentStore) -> None:
    with pytest.raises(ValueError, match=r"documents\[1\].*blob"):
        store.write_documents([Document(content="fine"), Document(content="x", blob=ByteStream(b"\x00\x01"))])
    sparse = SparseEmbedding(indices=[1, 5], values=[0.5, 0.2])
    with pytest.raises(ValueError, match="sparse_embedding"):
        store.write_documents([Document(content="y", sparse_embedding=sparse)])
    assert store.count_documents() == len(DOCS), "a refused batch writes nothing"


@pytest.mark.parametrize(
    ("policy", "written", "kept"),
    [(DuplicatePolicy.SKIP, 1, "first"), (DuplicatePolicy.OVERWRITE, 1, "second")],
)
def test_an_id_repeated_within_one_call_follows_the_policy(
    server: ServerThread, policy: DuplicatePolicy, written: int, kept: str
) -> None:
    store = new_store(server, dimension=3)
    try:
        docs = [Document(id="same", content="first"), Document(id="same", content="second")]
        assert store.write_documents(docs, policy=policy) == written
        assert [d.content for d in store.filter_documents()] == [kept]
        with pytest.raises(DuplicateDocumentError, match=r"documents\[1\] repeats"):
            store.write_documents([Document(id="new", content="x"), Document(id="new", content="y")])
        assert store.count_documents() == 1, "nothing of a refused call is written"
    finally:
        store.close()
        drop(server, store)


LOAD_AND_RUN = """
import json, sys
from haystack import Pipeline
pipeline = Pipeline.loads(open(sys.argv[1]).read())
result = pipeline.run({"retriever": {"query_embedding": [1.0, 0.2, 0.1]}})
print(json.dumps(result))
"""


def test_a_pipeline_file_loads_in_a_fresh_process_that_imports_nothing_of_ours(
    store: PgvectorGrpcDocumentStore, server: ServerThread, tmp_path: Path
) -> None:
    pipeline = pipeline_with(PgvectorGrpcEmbeddingRetriever(document_store=store, top_k=2))
    path = tmp_path / "pipeline.yaml"
    path.write_text(pipeline.dumps())
    env = {**os.environ, "PGVECTOR_GRPC_ADDRESS": server.address}
    run = subprocess.run(
        [sys.executable, "-c", LOAD_AND_RUN, str(path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {"prompt": {"prompt": "east|north-east|"}}
