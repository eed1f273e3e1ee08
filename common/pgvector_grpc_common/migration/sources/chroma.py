"""Reading ChromaDB collections through Chroma's own API, never touching the source.

A persistent directory is copied first and only the copy is opened: chromadb 1.x upgrades an
older directory in place, one-way, and two processes opening the same directory can hang or
corrupt it. Two known incompatibilities of directories written by Chroma 0.4-0.6 that make
chromadb 1.x fail (``seq_id`` stored as BLOBs; documents-less records queued as
``"chroma:document": null``) are repaired in the copy so that Chroma itself can read it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from pgvector_grpc_common.metadata_json import metadata_json as to_json
from pgvector_grpc_common.migration.events import MigrationError
from pgvector_grpc_common.migration.protocols import Cursor, Page, SourceCollection
from pgvector_grpc_common.migration.sources.source_tree import SourceTree, copy_source_tree
from pgvector_grpc_common.vocabulary import (
    DEFAULT_HNSW_EF_CONSTRUCTION,
    DEFAULT_HNSW_M,
    DocumentRecord,
    HnswIndex,
    Metric,
    Vector,
)

SPACES: dict[str, Metric] = {"cosine": "cosine", "l2": "l2", "ip": "inner_product"}
CHROMA_DEFAULT_SPACE = "l2"
DEFAULT_HTTP_TIMEOUT_SECONDS = 60.0


class SourceError(MigrationError):
    """The source cannot be read."""


@dataclass(frozen=True)
class ChromaLocation:
    """Where a Chroma store is: a persistent directory ``path`` or a server ``url``."""

    path: str | None = None
    url: str | None = None
    tenant: str = ""
    database: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    # How long a Chroma server may take to answer one request before the migration fails.
    timeout_seconds: float = DEFAULT_HTTP_TIMEOUT_SECONDS

    @classmethod
    def parse(cls, value: str, **kwargs: Any) -> ChromaLocation:
        """A location from a path or an http(s) URL."""
        if value.startswith(("http://", "https://")):
            return cls(url=value, **kwargs)
        return cls(path=value, **kwargs)

    def key(self, collection: str) -> str:
        """A stable name of one source collection, for checkpoints."""
        where = f"file://{Path(self.path).resolve()}" if self.path else str(self.url).rstrip("/")
        return f"chroma:{where}/{self.tenant or 'default_tenant'}/{self.database or 'default_database'}/{collection}"


def metadata_json(metadata: Mapping[str, Any] | None) -> str:
    """Chroma metadata as a JSON object; int, float, bool, str, None and lists keep their types."""
    return to_json(dict(metadata or {}))


def _legacy_error(path: Path) -> SourceError:
    return SourceError(
        f"{path} was written by Chroma 0.3.x or older (DuckDB + Parquet), which no current Chroma can read. "
        "Upgrade it first: `pip install chroma-migrate && chroma-migrate` converts it into a 0.4 directory "
        "(see Chroma's migration guide); then migrate that directory.",
        "CHROMA_LEGACY_FORMAT",
    )


def snapshot(source: Path, into: Path, tree: SourceTree | None = None) -> Path:
    """Copy a persistent directory and repair the copy for chromadb 1.x; the source is only read.

    With a scanned ``tree`` (of ``source``) only its files are copied, following no other link."""
    if not source.is_dir():
        raise SourceError(f"Chroma directory {source} does not exist", "CHROMA_SOURCE_NOT_FOUND")
    if not (source / "chroma.sqlite3").is_file():
        if any((source / name).exists() for name in ("chroma-embeddings.parquet", "chroma-collections.parquet")):
            raise _legacy_error(source)
        raise SourceError(
            f"{source} is not a Chroma persistent directory (no chroma.sqlite3)", "CHROMA_SOURCE_NOT_FOUND"
        )
    copy = into / "chroma"
    if tree is None:
        shutil.copytree(source, copy)
    else:
        copy_source_tree(tree, copy)
    _repair(copy / "chroma.sqlite3")
    return copy


def _repair(database: Path) -> None:
    with sqlite3.connect(database) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table in ("embeddings", "max_seq_id"):
            if table in tables:
                rows = db.execute(f"SELECT rowid, seq_id FROM {table} WHERE typeof(seq_id) = 'blob'").fetchall()
                db.executemany(
                    f"UPDATE {table} SET seq_id = ? WHERE rowid = ?",
                    [(int.from_bytes(blob, "big"), rowid) for rowid, blob in rows],
                )
        if "embeddings_queue" in tables:
            queued = db.execute(
                "SELECT rowid, metadata FROM embeddings_queue WHERE metadata LIKE '%\"chroma:document\": null%'"
            ).fetchall()
            for rowid, text in queued:
                meta = json.loads(text)
                if meta.get("chroma:document", "") is None:
                    del meta["chroma:document"]
                    db.execute("UPDATE embeddings_queue SET metadata = ? WHERE rowid = ?", (json.dumps(meta), rowid))


def _client(location: ChromaLocation, path: Path | None) -> Any:
    import chromadb
    from chromadb.config import DEFAULT_DATABASE, DEFAULT_TENANT, Settings

    settings = Settings(anonymized_telemetry=False)
    tenant = location.tenant or DEFAULT_TENANT
    database = location.database or DEFAULT_DATABASE
    if path is not None:
        return chromadb.PersistentClient(path=str(path), settings=settings, tenant=tenant, database=database)
    from pgvector_grpc_common.migration.sources.chroma_http import request_timeout

    parts = urlsplit(str(location.url))
    with request_timeout(location.timeout_seconds):
        return chromadb.HttpClient(
            host=parts.hostname or "localhost",
            port=parts.port or (443 if parts.scheme == "https" else 8000),
            ssl=parts.scheme == "https",
            headers=dict(location.headers),
            settings=settings,
            tenant=tenant,
            database=database,
        )


class ChromaSource:
    """An open Chroma store (a repaired snapshot of a directory, or a server); use as a context manager.

    ``tree``, the scan of ``location.path``, confines the snapshot to the files scanned."""

    def __init__(self, location: ChromaLocation, tree: SourceTree | None = None) -> None:
        self.location = location
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        path = None
        if location.path is not None:
            self._tmp = tempfile.TemporaryDirectory(prefix="pgvector-grpc-chroma-")
            try:
                path = snapshot(Path(location.path), Path(self._tmp.name), tree)
            except BaseException:
                self._tmp.cleanup()
                raise
        try:
            self._client = _client(location, path)
            self._client.heartbeat()
        except SourceError:
            raise
        except Exception as exc:
            self.close()
            raise SourceError(
                f"cannot open Chroma at {location.path or location.url}: {exc}", "CHROMA_UNAVAILABLE"
            ) from exc

    def collection_names(self) -> list[str]:
        """The names of the store's collections."""
        return sorted(c if isinstance(c, str) else c.name for c in self._client.list_collections())

    def collection(self, name: str) -> ChromaCollection:
        """One collection; SourceError CHROMA_COLLECTION_NOT_FOUND if absent."""
        try:
            handle = self._client.get_collection(name)
        except Exception as exc:
            if "does not exist" in str(exc) or type(exc).__name__ in ("NotFoundError", "InvalidCollectionException"):
                raise SourceError(f"Chroma collection {name!r} does not exist", "CHROMA_COLLECTION_NOT_FOUND") from exc
            raise SourceError(f"cannot open Chroma collection {name!r}: {exc}", "CHROMA_UNAVAILABLE") from exc
        return ChromaCollection(handle)

    def close(self) -> None:
        """Release the client and delete the snapshot."""
        client = getattr(self, "_client", None)
        if client is not None and self.location.path is not None:
            release_client(client)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> ChromaSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def release_client(client: Any) -> None:
    """Stop a PersistentClient's system and drop it from chromadb's per-path cache."""
    from chromadb.api.shared_system_client import SharedSystemClient

    cache = SharedSystemClient._identifier_to_system
    for identifier, system in list(cache.items()):
        if system is getattr(client, "_system", None):
            system.stop()
            del cache[identifier]


class ChromaCollection:
    """Paged reads of one collection, in Chroma's stable (insertion) order."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self.name: str = handle.name

    def count(self) -> int:
        """The number of records."""
        return int(self._handle.count())

    def describe(self, sample: int = 100) -> SourceCollection:
        """Count, dimension (from the data), metric and HNSW settings (from the collection), metadata keys."""
        first = self._handle.get(limit=sample, include=["embeddings", "metadatas"])
        embeddings = first.get("embeddings")
        if embeddings is None or len(embeddings) == 0:
            raise SourceError(
                f"Chroma collection {self.name!r} has no embeddings: nothing to migrate (the dimension is unknown)",
                "CHROMA_COLLECTION_EMPTY",
            )
        keys = sorted({key for meta in first.get("metadatas") or [] for key in (meta or {})})
        space, index = self._space_and_index()
        return SourceCollection(self.name, self.count(), len(embeddings[0]), SPACES[space], index, keys)

    def _space_and_index(self) -> tuple[str, HnswIndex]:
        # Settings given as legacy metadata ("hnsw:space") win: a directory upgraded from 0.x
        # reports Chroma's default configuration (l2) while its metadata holds the real space.
        legacy = dict(self._handle.metadata or {})
        config = getattr(self._handle, "configuration_json", None) or {}
        hnsw = config.get("hnsw") or {}
        spann = config.get("spann") or {}
        space = str(legacy.get("hnsw:space") or hnsw.get("space") or spann.get("space") or CHROMA_DEFAULT_SPACE)
        if space not in SPACES:
            raise SourceError(f"unknown Chroma space {space!r} in {self.name!r}", "CHROMA_UNKNOWN_SPACE")
        m = legacy.get("hnsw:M") or hnsw.get("max_neighbors") or DEFAULT_HNSW_M
        ef_construction = (
            legacy.get("hnsw:construction_ef") or hnsw.get("ef_construction") or DEFAULT_HNSW_EF_CONSTRUCTION
        )
        m = min(max(int(m), 2), 100)  # pgvector's limits
        ef_construction = min(max(int(ef_construction), 2 * m, 4), 1000)
        return space, HnswIndex(m, ef_construction)

    def continues_after(self, cursor: Cursor) -> bool:
        """The checkpoint still lines up: the document before it is the one it names."""
        return cursor.offset > 0 and self.id_at(cursor.offset - 1) == cursor.last_id

    def page(self, start: Cursor, size: int, fields: bool = True) -> Page:
        """Up to ``size`` records from ``start.offset``, with everything (only embeddings unless ``fields``)."""
        include = ["embeddings", "documents", "metadatas"] if fields else ["embeddings"]
        got = self._handle.get(offset=start.offset, limit=size, include=include)
        return Page(start.offset, _records(got))

    def get(self, ids: Sequence[str]) -> list[DocumentRecord]:
        """The records with these ids (in Chroma's order)."""
        return _records(self._handle.get(ids=list(ids), include=["embeddings", "documents", "metadatas"]))

    def present(self, ids: Sequence[str]) -> set[str]:
        """Which of these ids the collection holds."""
        if not ids:
            return set()
        return {str(doc_id) for doc_id in self._handle.get(ids=list(ids), include=[])["ids"]}

    def embedding_at(self, offset: int) -> Vector | None:
        """The embedding of the record at a position."""
        got = self._handle.get(offset=offset, limit=1, include=["embeddings"])
        matrix = _matrix(got.get("embeddings"))
        return matrix[0] if len(matrix) else None

    def id_at(self, offset: int) -> str | None:
        """The id at a position (None past the end)."""
        ids = self._handle.get(offset=offset, limit=1, include=[])["ids"]
        return str(ids[0]) if ids else None


def _matrix(embeddings: Any) -> np.ndarray[Any, np.dtype[np.float32]]:
    if embeddings is None or len(embeddings) == 0:
        return np.empty((0, 0), dtype=np.float32)
    return np.asarray(embeddings, dtype=np.float32)  # Chroma returns float64 of float32 values


def _records(got: Mapping[str, Any]) -> list[DocumentRecord]:
    ids = list(got["ids"])
    documents = got.get("documents") or [None] * len(ids)
    metadatas = got.get("metadatas") or [None] * len(ids)
    embeddings = _matrix(got.get("embeddings"))
    return [
        DocumentRecord(doc_id, documents[i], metadata_json(metadatas[i]), embeddings[i] if len(embeddings) else None)
        for i, doc_id in enumerate(ids)
    ]
