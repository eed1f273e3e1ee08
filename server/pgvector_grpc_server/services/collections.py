"""Collections: create, read, list, drop; a cache of definitions for validating requests."""

from __future__ import annotations

import dataclasses

from pgvector_grpc_common.vocabulary import IvfflatIndex, NoIndex

from pgvector_grpc_server.domain.errors import AlreadyExists, FailedPrecondition, NotFound
from pgvector_grpc_server.domain.models import CollectionInfo, CollectionSpec
from pgvector_grpc_server.domain.validation import check_collection_name, check_spec, unknown_text_search
from pgvector_grpc_server.services.tenancy import caller_tenant
from pgvector_grpc_server.storage.collections import CollectionStore


def not_found(name: str) -> NotFound:
    """The error for a collection that does not exist."""
    return NotFound(f"collection {name!r} does not exist", "COLLECTION_NOT_FOUND", {"collection": name})


class Collections:
    """Collection use cases."""

    def __init__(self, store: CollectionStore, index_build_memory: str = "512MB") -> None:
        self._store = store
        self._index_build_memory = index_build_memory
        self._specs: dict[str, CollectionSpec] = {}

    async def create(
        self, spec: CollectionSpec, *, if_not_exists: bool = False, defer_index: bool = False
    ) -> tuple[CollectionInfo, bool]:
        """Create a collection; with ``if_not_exists``, a matching existing one is returned instead.

        With ``defer_index`` (always for IVFFlat) the vector index is left for :meth:`build_index`. A text-search
        configuration is named as the catalogue names it (``pg_catalog.english`` becomes ``english``)."""
        check_spec(spec)
        if spec.text_search is not None:
            config = await self._store.text_search_config(spec.text_search)
            if config is None:
                raise unknown_text_search(spec.text_search)
            spec = dataclasses.replace(spec, text_search=config)
        existing = await self._store.get(spec.name)
        if existing is not None:
            if not if_not_exists:
                raise AlreadyExists(
                    f"collection {spec.name!r} already exists", "COLLECTION_EXISTS", {"collection": spec.name}
                )
            if (existing.dimension, existing.metric, existing.multi_tenant) != (
                spec.dimension,
                spec.metric,
                spec.multi_tenant,
            ):
                raise FailedPrecondition(
                    f"collection {spec.name!r} exists with dimension {existing.dimension}, metric "
                    f"{existing.metric} and multi_tenant {existing.multi_tenant}, not {spec.dimension}, "
                    f"{spec.metric} and {spec.multi_tenant}",
                    "COLLECTION_SPEC_MISMATCH",
                    {"collection": spec.name},
                )
            if spec.text_search is not None and existing.text_search != spec.text_search:
                raise FailedPrecondition(
                    f"collection {spec.name!r} exists with text_search {existing.text_search}, not {spec.text_search}",
                    "COLLECTION_SPEC_MISMATCH",
                    {"collection": spec.name},
                )
            return await self.info(existing), False
        # IVFFlat's lists are centres of the rows present when it is built: built on an empty
        # collection, it would send every document to a few lists. BuildIndex builds it after the load.
        defer_index = defer_index or isinstance(spec.index, IvfflatIndex)
        try:
            await self._store.create(spec, defer_index=defer_index)
        except AlreadyExists:  # a concurrent create won the race
            raise AlreadyExists(
                f"collection {spec.name!r} already exists", "COLLECTION_EXISTS", {"collection": spec.name}
            ) from None
        self._specs[spec.name] = spec
        return CollectionInfo(spec, 0, index_pending=defer_index and not isinstance(spec.index, NoIndex)), True

    async def spec(self, name: str, field: str = "collection") -> CollectionSpec:
        """The definition of an existing collection (cached)."""
        cached = self._specs.get(name)
        if cached is not None:
            return cached
        check_collection_name(name, field)
        spec = await self._store.get(name)
        if spec is None:
            raise not_found(name)
        self._specs[name] = spec
        return spec

    def forget(self, name: str) -> None:
        """Drop a cached definition (the collection was dropped, maybe by another server)."""
        self._specs.pop(name, None)

    async def info(self, spec: CollectionSpec) -> CollectionInfo:
        """A collection with its document count (of a multi-tenant one: the caller's documents)."""
        try:
            return (await self._store.with_counts([spec], tenant=caller_tenant()))[0]
        except NotFound:
            self.forget(spec.name)
            raise not_found(spec.name) from None

    async def get(self, name: str) -> CollectionInfo:
        """One collection with its count."""
        self.forget(name)  # reads of the catalogue itself are never served from the cache
        return await self.info(await self.spec(name, "name"))

    async def list(self) -> list[CollectionInfo]:
        """Every collection, by name, with counts (of a multi-tenant one: the caller's documents)."""
        return await self._store.with_counts(await self._store.list_all(), tenant=caller_tenant())

    async def build_index(self, name: str) -> CollectionInfo:
        """Build the collection's vector index if it was deferred."""
        spec = await self.spec(name, "name")
        try:
            await self._store.build_index(name, self._index_build_memory)
        except NotFound:
            self.forget(name)
            raise not_found(name) from None
        return await self.info(spec)

    async def delete(self, name: str) -> None:
        """Drop a collection and its documents."""
        check_collection_name(name)
        self.forget(name)
        if not await self._store.drop(name):
            raise not_found(name)
