"""Every client verb through the console script against a real server: --json parsed back,
tables, exit statuses and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pgvector_grpc import Client, Document

from tests.cli.run import cli, error_line, json_lines_of, json_of, ok
from tests.fix_server import ServerThread
from tests.processes import free_port


def test_version() -> None:
    assert ok("--version").stdout.strip() == "pgvector-grpc 0.1.0"


def test_help_documents_the_exit_statuses() -> None:
    for verb in ([], ["search"], ["collections", "create"]):
        text = ok(*verb, "--help").stdout
        assert "exit status:" in text
        assert "3  not found" in text


def test_collection_lifecycle(server: ServerThread) -> None:
    at = server.address
    created = json_of("collections", "create", "cli_life", "--dimension", "3", "--metric", "l2", server=at)
    assert created == {
        "name": "cli_life",
        "dimension": 3,
        "metric": "l2",
        "index": {"type": "hnsw", "m": 16, "ef_construction": 64},
        "documents": 0,
    }
    again = cli("collections", "create", "cli_life", "--dimension", "3", server=at)
    assert again.returncode == 1
    assert error_line(again).startswith("pgvector-grpc: ALREADY_EXISTS: ")
    same = json_of(
        "collections", "create", "cli_life", "--dimension", "3", "--metric", "l2", "--if-not-exists", server=at
    )
    assert same["name"] == "cli_life"

    assert "cli_life" in [c["name"] for c in json_of("collections", "list", server=at)]
    assert json_of("collections", "info", "cli_life", server=at)["dimension"] == 3
    described = ok("collections", "info", "cli_life", server=at).stdout
    assert "index:      hnsw (m=16, ef_construction=64)" in described

    refused = cli("collections", "delete", "cli_life", server=at, stdin="")
    assert refused.returncode == 2
    assert "refusing without --yes" in error_line(refused)
    assert json_of("collections", "delete", "cli_life", "--yes", server=at) == {"deleted": "cli_life"}

    missing = cli("collections", "info", "cli_life", server=at)
    assert missing.returncode == 3
    assert error_line(missing).startswith("pgvector-grpc: NOT_FOUND: ")


def test_deferred_index_and_index_options(server: ServerThread) -> None:
    at = server.address
    created = json_of(
        "collections", "create", "cli_ivf", "--dimension", "2", "--index", "ivfflat", "--lists", "4",
        "--defer-index", server=at,
    )  # fmt: skip
    assert created["index"] == {"type": "ivfflat", "lists": 4} and created["index_pending"] is True
    assert (
        "ivfflat (lists=4) - not built yet: run build-index" in ok("collections", "info", "cli_ivf", server=at).stdout
    )
    built = json_of("collections", "build-index", "cli_ivf", server=at)
    assert built["index"] == {"type": "ivfflat", "lists": 4} and "index_pending" not in built

    misplaced = cli("collections", "create", "cli_bad", "--dimension", "2", "--index", "none", "--m", "8", server=at)
    assert misplaced.returncode == 2
    assert "--m" in error_line(misplaced)


def test_list_is_an_aligned_table(server: ServerThread) -> None:
    at = server.address
    ok("collections", "create", "cli_table_a", "--dimension", "2", "--index", "none", server=at)
    ok("collections", "create", "cli_table_longer_name", "--dimension", "1024", "--index", "none", server=at)
    lines = ok("collections", "list", server=at).stdout.splitlines()
    assert lines[0].split() == ["NAME", "DIMENSION", "METRIC", "INDEX", "DOCUMENTS"]
    rows = [line for line in lines[1:] if line.startswith("cli_table_")]
    assert len(rows) == 2
    # every column starts at the same offset on every line
    assert len({line.index("cosine") for line in rows}) == 1
    assert len({line.index("none") for line in rows}) == 1


@pytest.fixture(scope="module")
def filled(server: ServerThread) -> str:
    with Client(server.address) as client:
        client.create_collection("cli_docs", 3, index=None)
        client.ingest(
            "cli_docs",
            [
                Document("a", "first", {"year": 2020, "tag": "x"}, [1.0, 0.0, 0.0]),
                Document("b", "second", {"year": 2021, "tag": "y"}, [0.9, 0.1, 0.0]),
                Document("c", "", {"year": 2022, "tag": "x"}, [0.0, 1.0, 0.0]),
                Document("d", None, {"year": 2023}, [0.0, 0.0, 1.0]),
            ],
        )
    return "cli_docs"


def test_count(server: ServerThread, filled: str) -> None:
    at = server.address
    assert json_of("count", filled, server=at) == {"collection": filled, "count": 4}
    assert json_of("count", filled, "--filter", '{"tag": "x"}', server=at)["count"] == 2
    assert ok("count", filled, "--filter", '{"year": {"$gte": 2022}}', server=at).stdout.strip() == "2"

    bad = cli("count", filled, "--filter", "{not json", server=at)
    assert bad.returncode == 2
    assert error_line(bad).startswith("pgvector-grpc: USAGE: --filter is not valid JSON")
    unknown = cli("count", filled, "--filter", '{"year": {"$near": 1}}', server=at)
    assert unknown.returncode == 2


def test_get(server: ServerThread, filled: str) -> None:
    at = server.address
    records = json_lines_of("get", filled, "c", "a", "--include-embedding", server=at)
    assert [r["id"] for r in records] == ["c", "a"]
    assert records[0] == {"id": "c", "content": "", "metadata": {"year": 2022, "tag": "x"}, "embedding": [0, 1, 0]}
    assert json_lines_of("get", filled, "d", server=at) == [{"id": "d", "content": None, "metadata": {"year": 2023}}]

    partly = cli("get", filled, "a", "nope", "--json", server=at)
    assert partly.returncode == 3
    assert [json.loads(line)["id"] for line in partly.stdout.splitlines()] == ["a"]
    assert "'nope'" in error_line(partly)

    table = ok("get", filled, "a", "b", server=at).stdout.splitlines()
    assert table[0].split() == ["ID", "CONTENT", "METADATA"]
    assert table[1].startswith("a   first")


def test_search_by_vector_file_stdin_and_like(server: ServerThread, filled: str, tmp_path: Path) -> None:
    at = server.address
    hits = json_of("search", filled, "--vector", "[1, 0, 0]", "--top-k", "2", server=at)
    assert [h["id"] for h in hits] == ["a", "b"]
    assert hits[0]["score"] == pytest.approx(1.0)
    assert set(hits[0]) == {"id", "score", "distance", "content", "metadata"}

    query = tmp_path / "query.json"
    query.write_text("[0, 0, 1]")
    assert json_of("search", filled, "--vector-file", str(query), "--top-k", "1", server=at)[0]["id"] == "d"
    from_stdin = json_of("search", filled, "--vector", "-", "--top-k", "1", server=at, stdin="[0, 1, 0]")
    assert from_stdin[0]["id"] == "c"

    like = json_of("search", filled, "--like", "a", "--top-k", "1", "--include-embedding", server=at)
    assert [h["id"] for h in like] == ["b"]  # the nearest other document, not "a" itself
    assert like[0]["embedding"] == pytest.approx([0.9, 0.1, 0.0])

    filtered = json_of("search", filled, "--vector", "[1, 0, 0]", "--filter", '{"tag": "x"}', server=at)
    assert [h["id"] for h in filtered] == ["a", "c"]

    table = ok("search", filled, "--vector", "[1, 0, 0]", "--top-k", "1", server=at).stdout.splitlines()
    assert table[0].split() == ["ID", "SCORE", "DISTANCE", "CONTENT", "METADATA"]
    assert table[1].split()[:3] == ["a", "1.0000", "0.0000"]

    missing = cli("search", filled, "--like", "nope", server=at)
    assert missing.returncode == 3
    not_a_vector = cli("search", filled, "--vector", '{"a": 1}', server=at)
    assert not_a_vector.returncode == 2
    wrong_length = cli("search", filled, "--vector", "[1, 0]", server=at)
    assert wrong_length.returncode == 1
    assert error_line(wrong_length).startswith("pgvector-grpc: ")


def test_delete(server: ServerThread) -> None:
    at = server.address
    with Client(at) as client:
        client.create_collection("cli_delete", 2, index=None)
        client.ingest("cli_delete", [Document(str(i), None, {"even": i % 2 == 0}, [1.0, float(i)]) for i in range(6)])

    assert json_of("delete", "cli_delete", "0", "1", server=at) == {"collection": "cli_delete", "deleted": 2}
    refused = cli("delete", "cli_delete", "--filter", '{"even": true}', server=at, stdin="")
    assert refused.returncode == 2
    assert json_of("count", "cli_delete", server=at)["count"] == 4
    assert json_of("delete", "cli_delete", "--filter", '{"even": true}', "--yes", server=at)["deleted"] == 2
    assert cli("delete", "cli_delete", server=at).returncode == 2  # nothing named
    assert ok("delete", "cli_delete", "--all", "--yes", server=at).stdout.strip() == "deleted 2 documents"
    assert json_of("count", "cli_delete", server=at)["count"] == 0
    assert cli("delete", "cli_gone", "x", server=at).returncode == 3


def test_health_json(server: ServerThread) -> None:
    assert json_of("health", server=server.address) == {"status": "SERVING"}


def test_unreachable_server_is_one_line_and_status_1() -> None:
    done = cli("collections", "list", server=f"127.0.0.1:{free_port()}")
    assert done.returncode == 1
    assert error_line(done).startswith("pgvector-grpc: UNAVAILABLE: ")


def test_connection_option_mistake_is_a_usage_error() -> None:
    done = cli("count", "x", "--tls-cert", "/nonexistent.pem")
    assert done.returncode == 2
    assert error_line(done) == "pgvector-grpc: USAGE: --tls-cert and --tls-key go together"


CHROMA = ["migrate", "--from-chroma", "./chroma", "--collection", "a"]
HAYSTACK = ["migrate", "--from-haystack", "store.yaml"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([*CHROMA, "--header", "x-token"], "--header must be NAME=VALUE, got 'x-token'"),
        ([*CHROMA, "--collection", "b", "--to", "c"], "--to names one target: use it with a single --collection"),
        ([*CHROMA, "--tls-server-name", "vectors"], "--tls-server-name needs --tls, --tls-ca or --tls-cert"),
        (HAYSTACK, "--from-haystack needs --to NAME (the target collection)"),
        (
            [*HAYSTACK, "--to", "c", "--tls", "--tls-server-name", "vectors"],
            "--tls-server-name is not supported with --from-haystack",
        ),
        (["health", "--tls-key", "/nonexistent.pem"], "--tls-cert and --tls-key go together"),
    ],
)
def test_migrate_and_health_usage_errors_are_one_line_and_status_2(args: list[str], message: str) -> None:
    done = cli(*args, "--json", server=f"127.0.0.1:{free_port()}")
    assert (done.returncode, error_line(done), done.stdout) == (2, f"pgvector-grpc: USAGE: {message}", "")
