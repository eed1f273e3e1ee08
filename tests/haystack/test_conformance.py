"""Haystack's own DocumentStore test suites, sync and async, against the real server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from haystack.dataclasses import Document
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.testing.document_store import (
    CountDocumentsByFilterTest,
    CountUniqueMetadataByFilterTest,
    DocumentStoreBaseExtendedTests,
    GetMetadataFieldMinMaxTest,
    GetMetadataFieldsInfoTest,
    GetMetadataFieldUniqueValuesTest,
)
from haystack.testing.document_store_async import (
    CountDocumentsAsyncTest,
    CountDocumentsByFilterAsyncTest,
    CountUniqueMetadataByFilterAsyncTest,
    DeleteAllAsyncTest,
    DeleteByFilterAsyncTest,
    DeleteDocumentsAsyncTest,
    FilterDocumentsAsyncTest,
    GetMetadataFieldMinMaxAsyncTest,
    GetMetadataFieldsInfoAsyncTest,
    GetMetadataFieldUniqueValuesAsyncTest,
    UpdateByFilterAsyncTest,
    WriteDocumentsAsyncTest,
)
from haystack_integrations.document_stores.pgvector_grpc import PgvectorGrpcDocumentStore

from tests.fix_server import ServerThread
from tests.haystack.stores import drop, new_store


class TestDocumentStore(
    DocumentStoreBaseExtendedTests,
    CountDocumentsByFilterTest,
    CountUniqueMetadataByFilterTest,
    GetMetadataFieldsInfoTest,
    GetMetadataFieldMinMaxTest,
    GetMetadataFieldUniqueValuesTest,
):
    @pytest.fixture
    def document_store(self, server: ServerThread) -> Iterator[PgvectorGrpcDocumentStore]:
        store = new_store(server)
        yield store
        store.close()
        drop(server, store)

    def test_write_documents(self, document_store: PgvectorGrpcDocumentStore) -> None:
        """Haystack leaves the default policy to the store: ours (NONE) refuses duplicates like FAIL."""
        docs = [Document(content="first", meta={"n": 1}), Document(content="second", embedding=[0.5] * 768)]
        assert document_store.write_documents(docs) == 2
        self.assert_documents_are_equal(document_store.filter_documents(), docs)
        with pytest.raises(DuplicateDocumentError):
            document_store.write_documents([Document(id=docs[0].id, content="first, changed")])
        self.assert_documents_are_equal(document_store.filter_documents(), docs)


class TestAsyncDocumentStore(
    CountDocumentsAsyncTest,
    CountDocumentsByFilterAsyncTest,
    CountUniqueMetadataByFilterAsyncTest,
    DeleteAllAsyncTest,
    DeleteByFilterAsyncTest,
    DeleteDocumentsAsyncTest,
    FilterDocumentsAsyncTest,
    GetMetadataFieldMinMaxAsyncTest,
    GetMetadataFieldsInfoAsyncTest,
    GetMetadataFieldUniqueValuesAsyncTest,
    UpdateByFilterAsyncTest,
    WriteDocumentsAsyncTest,
):
    @pytest.fixture
    async def document_store(self, server: ServerThread) -> AsyncIterator[PgvectorGrpcDocumentStore]:
        store = new_store(server)
        yield store
        await store.close_async()
        drop(server, store)

    async def test_write_documents_async(self, document_store: PgvectorGrpcDocumentStore) -> None:
        """See TestDocumentStore.test_write_documents."""
        docs = [Document(content="first", meta={"n": 1}), Document(content="second", embedding=[0.5] * 768)]
        assert await document_store.write_documents_async(docs) == 2
        self.assert_documents_are_equal(await document_store.filter_documents_async(), docs)
        with pytest.raises(DuplicateDocumentError):
            await document_store.write_documents_async([Document(id=docs[0].id, content="first, changed")])
        self.assert_documents_are_equal(await document_store.filter_documents_async(), docs)
