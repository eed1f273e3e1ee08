"""`export` then `ingest` is a logical backup: after deleting everything, every field comes back
exactly, in JSON Lines and in Parquet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pgvector_grpc import Client, Document

from tests.cli.run import cli, error_line, json_of, ok
from tests.fix_server import ServerThread

DIMENSION = 4

TRICKY = [
    Document("plain", "text", {"n": 1, "x": 1.0}, np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float64)),
    Document("empty-content", "", {}, np.array([1, 2, 3, 4], dtype=np.float32)),
    Document("no content", None, {"nested": {"list": [1, 2.0, "three", None, True], "deep": {"f": -0.0}}}, None),
    Document('ünïcødé/ids "quoted"', "multi\nline\ttext ✓", {"big": 1e16, "small": 5e-324, "i": 2**62}, None),
    Document("exact", None, {"b": False, "null": None}, np.array([1 / 3, 2 / 3, 1e-30, 123456.789], dtype=np.float64)),
    Document("single", "x", {"s": "1.0"}, np.array([1 / 3, 2 / 3, 0.5, -0.25], dtype=np.float32)),
]


def snapshot(client: Client, collection: str) -> list[dict[str, Any]]:
    """Every stored field with its exact type: metadata as JSON text (1 and 1.0 differ), embeddings
    with their dtype and bytes."""
    rows = []
    for doc in client.list(collection, include_embedding=True, order="insertion"):
        embedding = None if doc.embedding is None else (str(doc.embedding.dtype), doc.embedding.tobytes())
        rows.append(
            {"id": doc.id, "content": doc.content, "metadata": json.dumps(doc.metadata), "embedding": embedding}
        )
    return rows


@pytest.fixture
def stored(server: ServerThread, collection_name: str) -> str:
    name = collection_name
    with Client(server.address) as client:
        client.create_collection(name, DIMENSION, index=None)
        generated = [
            Document(f"doc-{i:04d}", f"content {i}" if i % 3 else None, {"i": i, "f": i / 7}, np.random.rand(4))
            for i in range(1100)
        ]
        client.ingest(name, TRICKY + generated)
    return name


@pytest.mark.parametrize("extension", ["jsonl", "parquet"])
def test_export_delete_ingest_restores_every_field(
    server: ServerThread, stored: str, extension: str, tmp_path: Path
) -> None:
    at = server.address
    with Client(at) as client:
        before = snapshot(client, stored)
    assert before[0]["embedding"][0] == "float64" and before[1]["embedding"][0] == "float32"

    backup = tmp_path / f"backup.{extension}"
    exported = json_of("export", stored, str(backup), "--page-size", "128", server=at)
    assert exported == {"collection": stored, "file": str(backup), "documents": 1106}
    assert cli("export", stored, str(backup), server=at).returncode == 2  # no silent overwrite

    assert json_of("delete", stored, "--all", "--yes", server=at)["deleted"] == 1106
    restored = json_of("ingest", stored, str(backup), "--batch-size", "300", server=at)
    assert restored["inserted"] == 1106 and restored["batches"] == 4

    with Client(at) as client:
        after = snapshot(client, stored)
    assert after == before


def test_jsonl_export_is_readable_json_lines(server: ServerThread, stored: str, tmp_path: Path) -> None:
    backup = tmp_path / "backup.jsonl"
    ok("export", stored, str(backup), "--filter", '{"n": 1}', server=server.address)
    (line,) = backup.read_text().splitlines()
    assert json.loads(line) == {"id": "plain", "content": "text", "metadata": {"n": 1, "x": 1.0}, "embedding": [
        0.1, 0.2, 0.3, 0.4]}  # fmt: skip
    to_stdout = ok("export", stored, "-", "--filter", '{"n": 1}', server=server.address).stdout
    assert to_stdout == backup.read_text()


def test_export_of_a_missing_collection_writes_nothing(server: ServerThread, tmp_path: Path) -> None:
    target = tmp_path / "nothing.parquet"
    done = cli("export", "no_such_collection", str(target), server=server.address)
    assert done.returncode == 3
    assert error_line(done).startswith("pgvector-grpc: NOT_FOUND: ")
    assert list(tmp_path.iterdir()) == []
