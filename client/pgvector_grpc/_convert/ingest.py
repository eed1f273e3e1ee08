"""Ingest: documents batched into requests, and the acknowledgements."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

from pgvector_grpc._convert.document import DocumentLike, document_to_pb
from pgvector_grpc.types import IngestAck, OnConflict
from pgvector_grpc.v1 import document_service_pb2

_POLICIES = {
    "upsert": document_service_pb2.CONFLICT_POLICY_UPSERT,
    "skip": document_service_pb2.CONFLICT_POLICY_SKIP,
    "fail": document_service_pb2.CONFLICT_POLICY_FAIL,
}


def policy_pb(on_conflict: OnConflict) -> int:
    """The ConflictPolicy value."""
    if on_conflict not in _POLICIES:
        raise ValueError(f"on_conflict must be one of {sorted(_POLICIES)}, got {on_conflict!r}")
    return _POLICIES[on_conflict]


class _Batcher:
    """Collects documents into IngestRequests of ``batch_size``.

    With a checkpoint, one full request is held back so that the checkpoint can ride on the
    last request of the call."""

    def __init__(
        self, collection: str, batch_size: int, on_conflict: OnConflict, checkpoint: tuple[str, str] | None
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._collection = collection
        self._policy = policy_pb(on_conflict)
        self._size = batch_size
        self._checkpoint = checkpoint
        self._held: document_service_pb2.IngestRequest | None = None
        self._request = self._new_request()

    def _new_request(self) -> document_service_pb2.IngestRequest:
        return document_service_pb2.IngestRequest(collection=self._collection, on_conflict=self._policy)  # type: ignore[arg-type]

    def add(self, doc: DocumentLike) -> document_service_pb2.IngestRequest | None:
        """A request ready to send once ``batch_size`` documents are in, else None."""
        document_to_pb(doc, self._request.documents.add())  # built in place: no per-document copy
        if len(self._request.documents) < self._size:
            return None
        full, self._request = self._request, self._new_request()
        if self._checkpoint is None:
            return full
        ready, self._held = self._held, full
        return ready

    def finish(self) -> list[document_service_pb2.IngestRequest]:
        """The requests still to send, the checkpoint set on the last one."""
        pending = [r for r in (self._held, self._request) if r is not None and r.documents]
        if pending and self._checkpoint is not None:
            pending[-1].checkpoint.key, pending[-1].checkpoint.value = self._checkpoint
        return pending


def ingest_requests(
    collection: str,
    documents: Iterable[DocumentLike],
    batch_size: int,
    on_conflict: OnConflict,
    checkpoint: tuple[str, str] | None = None,
) -> Iterator[document_service_pb2.IngestRequest]:
    """Lazily batch any iterable into IngestRequests (constant memory)."""
    batcher = _Batcher(collection, batch_size, on_conflict, checkpoint)
    for doc in documents:
        if request := batcher.add(doc):
            yield request
    yield from batcher.finish()


async def ingest_requests_async(
    collection: str,
    documents: Iterable[DocumentLike] | AsyncIterable[DocumentLike],
    batch_size: int,
    on_conflict: OnConflict,
    checkpoint: tuple[str, str] | None = None,
) -> AsyncIterator[document_service_pb2.IngestRequest]:
    """The asyncio twin of :func:`ingest_requests`, also for async iterables."""
    if not isinstance(documents, AsyncIterable):
        for each in ingest_requests(collection, documents, batch_size, on_conflict, checkpoint):
            yield each
        return
    batcher = _Batcher(collection, batch_size, on_conflict, checkpoint)
    async for doc in documents:
        if request := batcher.add(doc):
            yield request
    for each in batcher.finish():
        yield each


def ack_from_pb(pb: document_service_pb2.IngestResponse) -> IngestAck:
    """An IngestAck."""
    return IngestAck(pb.sequence, pb.inserted, pb.updated, pb.skipped)
