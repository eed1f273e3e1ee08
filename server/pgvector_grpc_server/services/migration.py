"""Migrate: the shared migration engine, writing through this server's own services."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

from pgvector_grpc_common.migration.engine import migrate
from pgvector_grpc_common.migration.events import Event, MigrationError
from pgvector_grpc_common.migration.options import MigrationOptions
from pgvector_grpc_common.migration.protocols import Page
from pgvector_grpc_common.migration.sources.chroma import ChromaLocation, ChromaSource
from pgvector_grpc_common.vocabulary import DocumentRecord, Index, Metric, Vector

from pgvector_grpc_server.domain.errors import (
    Aborted,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from pgvector_grpc_server.domain.models import (
    Checkpoint,
    CollectionSpec,
    Include,
    SearchQuery,
)
from pgvector_grpc_server.domain.validation import check_collection_name
from pgvector_grpc_server.services.collections import Collections
from pgvector_grpc_server.services.documents import Documents

_ERRORS: dict[str, type[DomainError]] = {
    "CHROMA_SOURCE_NOT_FOUND": NotFound,
    "CHROMA_COLLECTION_NOT_FOUND": NotFound,
    "CHROMA_UNAVAILABLE": Unavailable,
    "BAD_BATCH_SIZE": InvalidArgument,
    "BAD_SAMPLE_SIZE": InvalidArgument,
}
_FIELDS = {"BAD_BATCH_SIZE": "batch_size", "BAD_SAMPLE_SIZE": "verify_sample_size"}


def domain_error(exc: MigrationError) -> DomainError:
    """The domain error (and so the status code) of a migration failure."""
    if exc.reason in _FIELDS:
        return InvalidArgument.of(_FIELDS[exc.reason], str(exc), exc.reason)
    return _ERRORS.get(exc.reason, FailedPrecondition)(str(exc), exc.reason)


class ServerTarget:
    """The engine's Target over the Collections and Documents services."""

    def __init__(self, collections: Collections, documents: Documents) -> None:
        self._collections = collections
        self._documents = documents

    async def describe(self, name: str) -> tuple[int, Metric] | None:
        check_collection_name(name, "target")
        try:
            spec = await self._collections.spec(name, "target")
        except NotFound:
            return None
        return spec.dimension, spec.metric

    async def create(self, name: str, dimension: int, metric: Metric, index: Index) -> None:
        spec = CollectionSpec(name, dimension, metric, index)
        await self._collections.create(spec, if_not_exists=True, defer_index=True)

    async def checkpoint(self, name: str, key: str) -> str | None:
        return await self._documents.checkpoint(name, key)

    async def write(self, name: str, page: Page, key: str, checkpoint: str) -> None:
        await self._documents.write(name, list(page.records), "upsert", Checkpoint(key, checkpoint))

    async def build_index(self, name: str) -> None:
        await self._collections.build_index(name)

    async def count(self, name: str) -> int:
        return await self._documents.count(name, None)

    async def fetch(self, name: str, ids: Sequence[str], fields: bool) -> dict[str, DocumentRecord]:
        docs = await self._documents.get(name, ids, Include(fields, fields, fields))
        return {d.id: d for d in docs}

    async def nearest(self, name: str, vector: Vector, k: int) -> list[tuple[str, float]]:
        query = SearchQuery(name, vector, k, include=Include(False, False, False), exact=True)
        return [(hit.document.id, hit.distance) for hit in await self._documents.search(query)]


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except MigrationError as exc:
        raise domain_error(exc) from exc


RUNNING_GRACE_SECONDS = 5.0


class Migrations:
    """Runs migrations from sources the server can reach; one at a time per source and target."""

    def __init__(self, collections: Collections, documents: Documents, allowed_roots: Sequence[str] = ()) -> None:
        self._target = ServerTarget(collections, documents)
        self._allowed_roots = list(allowed_roots)
        self._running: dict[tuple[str, str], asyncio.Event] = {}

    async def run(self, location: ChromaLocation, collection: str, options: MigrationOptions) -> AsyncIterator[Event]:
        """Migrate one Chroma collection, yielding the engine's events."""
        if not collection:
            raise InvalidArgument.of("chroma.collection", "name the Chroma collection to migrate", "MISSING")
        if not (location.path or location.url):
            raise InvalidArgument.of("chroma.location", "give a path or a url", "MISSING")
        self._check_path(location)
        key = location.key(collection)
        job = (key, options.target or collection)
        exclusive = not options.dry_run
        if exclusive:
            await self._wait_for_previous(job, collection)
            self._running[job] = asyncio.Event()
        try:
            with _translated():
                source = await asyncio.to_thread(ChromaSource, location)
            try:
                with _translated():
                    handle = await asyncio.to_thread(source.collection, collection)
                    async for event in migrate(handle, key, self._target, options):
                        yield event
            finally:
                await asyncio.to_thread(source.close)
        finally:
            if exclusive:
                self._running.pop(job).set()

    async def _wait_for_previous(self, job: tuple[str, str], collection: str) -> None:
        """A run whose caller just went away is still cleaning up: give it a moment to end."""
        while (previous := self._running.get(job)) is not None:
            try:
                await asyncio.wait_for(previous.wait(), timeout=RUNNING_GRACE_SECONDS)
            except TimeoutError:
                raise Aborted(
                    f"a migration of {collection!r} into {job[1]!r} is already running", "MIGRATION_RUNNING"
                ) from None

    def _check_path(self, location: ChromaLocation) -> None:
        if location.path is None or not self._allowed_roots:
            return
        path = Path(location.path).resolve()
        if not any(path.is_relative_to(Path(root).resolve()) for root in self._allowed_roots):
            raise PermissionDenied(
                f"{location.path} is outside the directories this server may read (PGVECTOR_GRPC_MIGRATE_ROOTS)",
                "PATH_NOT_ALLOWED",
            )
