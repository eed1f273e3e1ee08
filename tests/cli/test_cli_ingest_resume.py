"""`ingest --checkpoint-key`: a run that stops at a bad record leaves the acknowledged batches and
their checkpoint; after the record is fixed, a re-run skips exactly that prefix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pgvector_grpc import Client

from tests.cli.run import cli, error_line, json_of
from tests.fix_server import ServerThread


def line(i: int, dimension: int = 2) -> str:
    return json.dumps({"id": f"d{i:02d}", "content": f"doc {i}", "metadata": {"i": i}, "embedding": [1.0] * dimension})


@pytest.fixture
def empty(server: ServerThread, collection_name: str) -> str:
    with Client(server.address) as client:
        client.create_collection(collection_name, 2, index=None)
    return collection_name


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("bad", "status_code"),
    [("{this is not json", "INVALID_RECORD"), (line(6, dimension=3), "INVALID_ARGUMENT")],
    ids=["unreadable-line", "rejected-by-the-server"],
)
def test_rerun_resumes_after_the_acknowledged_prefix(
    server: ServerThread, empty: str, tmp_path: Path, bad: str, status_code: str
) -> None:
    at = server.address
    good = [line(i) for i in range(1, 11)]
    source = write_lines(tmp_path / "docs.jsonl", [*good[:5], bad, *good[6:]])
    options = ["--batch-size", "2", "--checkpoint-key", "load-1", "--on-conflict", "fail"]

    first = cli("ingest", empty, str(source), *options, server=at)
    assert first.returncode == 1
    message = error_line(first)
    assert message.startswith(f"pgvector-grpc: {status_code}: ")
    assert "docs.jsonl:6" in message
    assert "--checkpoint-key load-1" in message
    assert json_of("count", empty, server=at)["count"] == 4  # batches [1, 2] and [3, 4]

    write_lines(source, good)
    # --on-conflict fail proves the prefix is not sent again: d01..d04 exist already
    second = json_of("ingest", empty, str(source), *options, server=at)
    assert second["resumed_from"] == 4
    assert second["inserted"] == 6
    assert json_of("count", empty, server=at)["count"] == 10

    done = json_of("ingest", empty, str(source), *options, server=at)
    assert (done["resumed_from"], done["documents"]) == (10, 0)
    again = cli("ingest", empty, str(source), *options, "--restart", server=at)
    assert again.returncode == 1
    assert error_line(again).startswith("pgvector-grpc: ALREADY_EXISTS: ")


def test_without_a_checkpoint_key_the_records_before_a_bad_one_are_ingested(
    server: ServerThread, empty: str, tmp_path: Path
) -> None:
    source = write_lines(tmp_path / "docs.jsonl", [line(1), "", line(2), '{"id": "x", "colour": "red"}', line(4)])
    done = cli("ingest", empty, str(source), server=server.address)
    assert done.returncode == 1
    message = error_line(done)
    assert "docs.jsonl:4: unknown field(s) colour" in message
    assert "the 2 documents before it were ingested" in message
    assert json_of("count", empty, server=server.address)["count"] == 2


def test_parquet_and_stdin(server: ServerThread, empty: str, tmp_path: Path) -> None:
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as parquet

    table = pyarrow.table(
        {
            "id": ["p1", "p2"],
            "metadata": ['{"k": 1.5}', None],
            "embedding": pyarrow.array([[1.0, 2.0], [3.0, 4.0]], type=pyarrow.list_(pyarrow.float32())),
        }
    )
    parquet.write_table(table, tmp_path / "docs.parquet")
    assert json_of("ingest", empty, str(tmp_path / "docs.parquet"), server=server.address)["inserted"] == 2
    piped = json_of("ingest", empty, "-", server=server.address, stdin=line(3) + "\n")
    assert piped["inserted"] == 1
    with Client(server.address) as client:
        (p1,) = client.get(empty, ["p1"], include_embedding=True)
    assert p1.metadata == {"k": 1.5} and p1.content is None
    assert p1.embedding is not None and p1.embedding.tolist() == [1.0, 2.0]


def test_missing_collection_and_file(server: ServerThread, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "docs.jsonl", [line(1)])
    assert cli("ingest", "no_such_collection", str(source), server=server.address).returncode == 3
    missing_file = cli("ingest", "no_such_collection", str(tmp_path / "nope.jsonl"), server=server.address)
    assert missing_file.returncode == 2
    assert cli("ingest", "x", str(tmp_path / "docs.csv"), server=server.address).returncode == 2
