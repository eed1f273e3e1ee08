"""Migrate: the shared migration engine, writing through this server's own services."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from pgvector_grpc_common.migration.engine import migrate
from pgvector_grpc_common.migration.events import Event, MigrationError
from pgvector_grpc_common.migration.options import MigrationOptions
from pgvector_grpc_common.migration.protocols import Page
from pgvector_grpc_common.migration.sources.chroma import ChromaLocation, ChromaSource
from pgvector_grpc_common.migration.sources.source_tree import scan_source_tree
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
from pgvector_grpc_server.services.migration_sources import DirectoryCopies, SourcePolicy

_ERRORS: dict[str, type[DomainError]] = {
    "CHROMA_SOURCE_NOT_FOUND": NotFound,
    "CHROMA_COLLECTION_NOT_FOUND": NotFound,
    "CHROMA_UNAVAILABLE": Unavailable,
    "BAD_BATCH_SIZE": InvalidArgument,
    "BAD_SAMPLE_SIZE": InvalidArgument,
    "SYMLINK_OUTSIDE_ROOTS": PermissionDenied,
    "SOURCE_CHANGED": Aborted,
}
_FIELDS = {"BAD_BATCH_SIZE": "batch_size", "BAD_SAMPLE_SIZE": "verify_sample_size"}


def domain_error(exc: MigrationError) -> DomainError:
    """The domain error (and so the status code) of a migration failure."""
    if exc.reason in _FIELDS:
        return InvalidArgument.of(_FIELDS[exc.reason], str(exc), exc.reason)
    return _ERRORS.get(exc.reason, FailedPrecondition)(str(exc), exc.reason)


_ONLY_IDS = Include(False, False, False)


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

    async def ids(self, name: str, page_size: int) -> AsyncIterator[list[str]]:
        token = ""
        while True:
            docs, token = await self._documents.list_page(name, None, page_size, token, _ONLY_IDS)
            if docs:
                yield [doc.id for doc in docs]
            if not token:
                return

    async def delete(self, name: str, ids: Sequence[str]) -> int:
        return await self._documents.delete(name, ids, None, False)

    async def fetch(self, name: str, ids: Sequence[str], fields: bool) -> dict[str, DocumentRecord]:
        docs = await self._documents.get(name, ids, Include(fields, fields, fields))
        return {d.id: d for d in docs}

    async def nearest(self, name: str, vector: Vector, k: int) -> list[tuple[str, float]]:
        query = SearchQuery(name, vector, k, include=Include(False, False, False), exact=True)
        return [(hit.document.id, hit.distance) for hit in (await self._documents.search(query)).hits]


@contextlib.contextmanager
def _translated(location: ChromaLocation) -> Iterator[None]:
    try:
        yield
    except MigrationError as exc:
        if location.url is not None and exc.reason in _QUOTING_THE_REMOTE:
            kind = _ERRORS.get(exc.reason, FailedPrecondition)
            raise kind(_remote_failure(location.url, exc), exc.reason) from exc
        raise domain_error(exc) from exc


# Reasons whose messages quote what a Chroma server sent: never passed on to the caller.
_QUOTING_THE_REMOTE = {"CHROMA_UNAVAILABLE", "CHROMA_UNKNOWN_SPACE"}


def _remote_failure(url: str, exc: MigrationError) -> str:
    """What went wrong with a Chroma server, without a word of what it sent (body or headers)."""
    parts = urlsplit(url)
    return f"Chroma at {parts.scheme}://{parts.netloc} could not be read ({exc.reason})"


RUNNING_GRACE_SECONDS = 5.0


class Migrations:
    """Runs migrations from sources the operator allows; one at a time per source and target, and
    one copy at a time per source directory (dry runs included)."""

    def __init__(self, collections: Collections, documents: Documents, policy: SourcePolicy | None = None) -> None:
        self._target = ServerTarget(collections, documents)
        self._policy = policy or SourcePolicy()
        self._copies = DirectoryCopies(self._policy, RUNNING_GRACE_SECONDS)
        self._running: dict[tuple[str, str], asyncio.Event] = {}

    async def run(self, location: ChromaLocation, collection: str, options: MigrationOptions) -> AsyncIterator[Event]:
        """Migrate one Chroma collection, yielding the engine's events."""
        if not collection:
            raise InvalidArgument.of("chroma.collection", "name the Chroma collection to migrate", "MISSING")
        if location.path:
            location = replace(location, path=str(self._policy.directory(location.path)))
        elif location.url:
            self._policy.check_url(location.url, location.headers)
            location = replace(location, timeout_seconds=self._policy.http_timeout)
        else:
            raise InvalidArgument.of("chroma.location", "give a path or a url", "MISSING")
        key = location.key(collection)
        job = (key, options.target or collection)
        exclusive = not options.dry_run
        if exclusive:
            await self._wait_for_previous(job, collection)
            self._running[job] = asyncio.Event()
        try:
            async with self._open(location) as source:
                with _translated(location):
                    handle = await asyncio.to_thread(source.collection, collection)
                    async for event in migrate(handle, key, self._target, options):
                        yield event
        finally:
            if exclusive:
                self._running.pop(job).set()

    @contextlib.asynccontextmanager
    async def _open(self, location: ChromaLocation) -> AsyncIterator[ChromaSource]:
        """The source opened; a directory is scanned, claimed and fitted to the disk before its copy."""
        async with contextlib.AsyncExitStack() as stack:
            tree = None
            if location.path is not None:
                directory = Path(location.path)
                await stack.enter_async_context(self._copies.claim(directory))
                with _translated(location):
                    tree = await asyncio.to_thread(scan_source_tree, directory, self._policy.roots)
                self._copies.reserve(directory, tree.size)
            with _translated(location):
                source = await asyncio.to_thread(ChromaSource, location, tree)
            try:
                yield source
            finally:
                await asyncio.to_thread(source.close)

    async def _wait_for_previous(self, job: tuple[str, str], collection: str) -> None:
        """A run whose caller just went away is still cleaning up: give it a moment to end."""
        while (previous := self._running.get(job)) is not None:
            try:
                await asyncio.wait_for(previous.wait(), timeout=RUNNING_GRACE_SECONDS)
            except TimeoutError:
                raise Aborted(
                    f"a migration of {collection!r} into {job[1]!r} is already running", "MIGRATION_RUNNING"
                ) from None
