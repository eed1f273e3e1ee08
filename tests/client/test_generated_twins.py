"""The blocking client and the blocking half of the Haystack store are generated from their asyncio
sources: fresh, and the same API apart from ``await``."""

from __future__ import annotations

import filecmp
import inspect
import subprocess
import sys
from inspect import Parameter
from pathlib import Path

from haystack_integrations.document_stores.pgvector_grpc import PgvectorGrpcDocumentStore
from haystack_integrations.document_stores.pgvector_grpc._async_operations import AsyncStoreOperations
from haystack_integrations.document_stores.pgvector_grpc._sync_operations import StoreOperations
from pgvector_grpc import AsyncClient, Client

ROOT = Path(__file__).resolve().parents[2]
GENERATED = [
    "client/pgvector_grpc/sync.py",
    "client/haystack_integrations/document_stores/pgvector_grpc/_sync_operations.py",
]


def test_generated_twins_are_fresh(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "async_to_sync.py"), "--out", str(tmp_path)], check=True)
    stale = [path for path in GENERATED if not filecmp.cmp(tmp_path / path, ROOT / path, shallow=False)]
    assert stale == [], f"regenerate with `make generate`: {stale}"


def public_methods(cls: type) -> dict[str, object]:
    return {name: member for name, member in vars(cls).items() if callable(member) and not name.startswith("_")}


def parameters(method: object) -> list[inspect.Parameter]:
    assert callable(method)
    return list(inspect.signature(method).parameters.values())


def test_client_twins_have_the_same_methods_parameters_and_docstrings() -> None:
    blocking, asyncio = public_methods(Client), public_methods(AsyncClient)
    assert blocking.keys() == asyncio.keys()
    for name, method in blocking.items():
        assert inspect.getdoc(method) == inspect.getdoc(asyncio[name]), name
        twin_parameters = parameters(asyncio[name])
        if name == "ingest":  # the asyncio twin also takes async iterables (the next test)
            twin_parameters = [p.replace(annotation=Parameter.empty) for p in twin_parameters]
            assert [p.replace(annotation=Parameter.empty) for p in parameters(method)] == twin_parameters
        else:
            assert parameters(method) == twin_parameters, name


def test_asyncio_ingest_also_takes_async_iterables() -> None:
    assert "AsyncIterable" in str(inspect.signature(AsyncClient.ingest).parameters["documents"].annotation)
    assert "AsyncIterable" not in str(inspect.signature(Client.ingest).parameters["documents"].annotation)


def test_document_store_twins_have_the_same_parameters_and_docstrings() -> None:
    blocking = {n: m for n, m in vars(StoreOperations).items() if callable(m) and not n.startswith("__")}
    asyncio = {n.removesuffix("_async"): m for n, m in vars(AsyncStoreOperations).items() if n.endswith("_async")}
    assert len(blocking) == 14
    assert blocking.keys() == asyncio.keys()
    for name, method in blocking.items():
        assert inspect.getdoc(method) == inspect.getdoc(asyncio[name]), name
        assert parameters(method) == parameters(asyncio[name]), name
        assert inspect.iscoroutinefunction(asyncio[name]) and not inspect.iscoroutinefunction(method), name
    assert issubclass(PgvectorGrpcDocumentStore, StoreOperations)
    assert issubclass(PgvectorGrpcDocumentStore, AsyncStoreOperations)
