"""The store and retriever against a server that requires authentication over TLS: pipelines with a
writer's and a reader's key (Secrets from the environment), the reader refused writes with
PERMISSION_DENIED, and pipeline YAML that names the key's variable, never its value."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from haystack import Document, Pipeline
from haystack.components.writers import DocumentWriter
from haystack.core.errors import PipelineRuntimeError
from haystack.utils import Secret
from haystack_integrations.components.retrievers.pgvector_grpc import PgvectorGrpcEmbeddingRetriever
from haystack_integrations.document_stores.pgvector_grpc import PgvectorGrpcDocumentStore
from pgvector_grpc import Client
from pgvector_grpc import Document as ClientDocument
from pgvector_grpc.errors import PermissionDeniedError, UnauthenticatedError

from tests.fix_server import ServerThread
from tests.security.certs import CertificateAuthority, Pem
from tests.security.keys import create_key

DOCS = [
    Document(id="up", content="up", meta={"side": "top"}, embedding=[0.0, 1.0, 0.0]),
    Document(id="right", content="right", meta={"side": "right"}, embedding=[1.0, 0.0, 0.0]),
]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pem]:
    ca = CertificateAuthority(tmp_path_factory.mktemp("pki"), "haystack-ca")
    return {"ca": ca.pem, "server": ca.issue("server", server=True)}


@pytest.fixture(scope="module")
def server(database: str, pki: dict[str, Pem]) -> Iterator[ServerThread]:
    running = ServerThread(
        database, tls_cert_file=pki["server"].cert, tls_key_file=pki["server"].key, require_auth=True
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def keys(server: ServerThread, database: str, pki: dict[str, Pem]) -> dict[str, str]:
    made = {role: create_key(database, role) for role in ("admin", "writer", "reader")}
    with Client(server.address, api_key=made["admin"], tls=pki["ca"].cert) as admin:
        admin.create_collection("shared", 3)
        admin.ingest("shared", [ClientDocument(d.id, d.content, d.meta, d.embedding) for d in DOCS])
    return made


@pytest.fixture
def environment(server: ServerThread, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("PGVECTOR_GRPC_ADDRESS", server.address)
    monkeypatch.setenv("PGVECTOR_GRPC_API_KEY", keys["reader"])
    monkeypatch.setenv("WRITER_KEY", keys["writer"])
    return keys


def store(pki: dict[str, Pem], api_key: Secret | None = None) -> PgvectorGrpcDocumentStore:
    """A store on the shared collection over TLS; its key from PGVECTOR_GRPC_API_KEY unless given."""
    key = {"api_key": api_key} if api_key else {}
    return PgvectorGrpcDocumentStore(collection="shared", embedding_dimension=3, tls_ca_file=str(pki["ca"].cert), **key)


def writing_pipeline(document_store: PgvectorGrpcDocumentStore) -> Pipeline:
    pipeline = Pipeline()
    pipeline.add_component("writer", DocumentWriter(document_store=document_store))
    return pipeline


def test_a_writer_key_writes_and_a_reader_key_retrieves(environment: dict[str, str], pki: dict[str, Pem]) -> None:
    writer_store = store(pki, api_key=Secret.from_env_var("WRITER_KEY"))
    down = Document(id="down", content="down", embedding=[0.0, -1.0, 0.0])
    result = writing_pipeline(writer_store).run({"writer": {"documents": [down]}})
    assert result == {"writer": {"documents_written": 1}}

    reader_store = store(pki)  # the key from PGVECTOR_GRPC_API_KEY: the reader's
    pipeline = Pipeline()
    pipeline.add_component("retriever", PgvectorGrpcEmbeddingRetriever(document_store=reader_store, top_k=1))
    found = pipeline.run({"retriever": {"query_embedding": [0.1, -0.9, 0.0]}})
    assert [d.id for d in found["retriever"]["documents"]] == ["down"]
    assert reader_store.count_documents() == 3
    writer_store.close()
    reader_store.close()


def test_a_reader_key_cannot_write(environment: dict[str, str], pki: dict[str, Pem]) -> None:
    reader_store = store(pki)
    with pytest.raises(PipelineRuntimeError) as raised:
        writing_pipeline(reader_store).run({"writer": {"documents": [Document(id="no", embedding=[1.0, 1.0, 0.0])]}})
    assert "PERMISSION_DENIED" in str(raised.value) and "writer role" in str(raised.value)
    cause = raised.value.__cause__
    assert isinstance(cause, PermissionDeniedError) and cause.reason == "ROLE_NOT_ALLOWED"
    assert reader_store.filter_documents({"field": "id", "operator": "==", "value": "no"}) == []
    reader_store.close()


def test_no_key_is_unauthenticated(
    environment: dict[str, str], pki: dict[str, Pem], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGVECTOR_GRPC_API_KEY")
    with pytest.raises(UnauthenticatedError):
        store(pki).count_documents()


async def test_the_async_path_sends_the_key(environment: dict[str, str], pki: dict[str, Pem]) -> None:
    writer_store = store(pki, api_key=Secret.from_env_var("WRITER_KEY"))
    assert await writer_store.count_documents_async() >= 2
    retriever = PgvectorGrpcEmbeddingRetriever(document_store=writer_store, top_k=1)
    assert [d.id for d in (await retriever.run_async([1.0, 0.1, 0.0]))["documents"]] == ["right"]
    await writer_store.close_async()


def test_yaml_keeps_the_key_as_an_environment_variable(environment: dict[str, str], pki: dict[str, Pem]) -> None:
    retriever = PgvectorGrpcEmbeddingRetriever(document_store=store(pki, api_key=Secret.from_env_var("WRITER_KEY")))
    pipeline = Pipeline()
    pipeline.add_component("retriever", retriever)
    text = pipeline.dumps()
    assert "WRITER_KEY" in text and str(pki["ca"].cert) in text
    for key in environment.values():
        assert key not in text and key.split("_", 2)[2] not in text
    loaded = Pipeline.loads(text)
    reloaded = loaded.get_component("retriever").document_store
    assert reloaded.api_key == Secret.from_env_var("WRITER_KEY")
    found = loaded.run({"retriever": {"query_embedding": [0.0, 1.0, 0.0]}})["retriever"]["documents"]
    assert found[0].id == "up"
    with pytest.raises(ValueError, match="token"):
        store(pki, api_key=Secret.from_token(environment["writer"])).to_dict()
