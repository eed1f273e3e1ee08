"""PgvectorGrpcDocumentStores on the test server, each on a collection of its own."""

from __future__ import annotations

import uuid

from haystack.utils import Secret
from haystack_integrations.document_stores.pgvector_grpc import PgvectorGrpcDocumentStore
from pgvector_grpc import Client

from tests.fix_server import ServerThread


def new_store(server: ServerThread, dimension: int = 768, **options: object) -> PgvectorGrpcDocumentStore:
    """A store on a fresh collection (created on first use)."""
    name = "hs_" + uuid.uuid4().hex[:16]
    return PgvectorGrpcDocumentStore(
        address=Secret.from_token(server.address), collection=name, embedding_dimension=dimension, **options
    )


def drop(server: ServerThread, store: PgvectorGrpcDocumentStore) -> None:
    """Delete the store's collection if it was created."""
    with Client(server.address) as client:
        if any(c.name == store.collection for c in client.list_collections()):
            client.delete_collection(store.collection)
